"""TrainConfig: how a stage trains. Each field is also the flag of every training script (settings.py), so a
training setting is added by adding a field here; trainer.py reads it from the config."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tinybert.data.tasks import SAMPLE_HELP
from tinybert.errors import UserError
from tinybert.settings import setting


# The settings (flags) a resumed run may change; --resume refuses a change of any other. They decide what is
# logged, when checkpoints are written, where things go and what runs them, not what is learned. The paths of
# the inputs may change too: the run knows its inputs by content (TrainConfig.identity), wherever they lie.
# How long to train (--max_steps, --num_train_epochs) may change so that a run can be extended; the
# learning-rate schedule then follows the new total. docs/operations.md lists them.
RESUME_FREE = frozenset({
    "resume", "overwrite_output_dir", "output_dir", "logging_dir", "visualdl", "logging_steps", "save_steps",
    "checkpoint_minutes", "checkpoint_budget", "device", "n_gpu", "max_steps", "num_train_epochs",
    "teacher_path", "model_name_or_path", "student_config", "data_dir", "glue_dir", "train_file", "dev_file",
    "test_file", "cache_teacher_logits", "teacher_runtime",
})


@dataclass(frozen=True)
class TrainConfig:
    """How a stage trains; checked when built. Scripts build it from their flags (settings.from_args) and
    change defaults with settings.add_flags(..., defaults=...)."""
    output_dir: str = setting(help="Folder for best_model/, last/ and train_log.jsonl.")
    overwrite_output_dir: bool = setting(
        False, "Start afresh in a non-empty output folder this project wrote.",
        aliases=("--overwrite",))
    resume: bool = setting(False, "Continue the run in OUTPUT_DIR/last.")
    learning_rate: float = setting(1e-4, "Peak learning rate of AdamW.")
    num_train_epochs: float = setting(3, "Epochs (unless --max_steps > 0).")
    max_steps: int = setting(-1, "Steps in total; overrides epochs if > 0.")
    batch_size: int = setting(32, "Examples per device per forward pass.")
    gradient_accumulation_steps: int = setting(1, "Batches summed per optimizer step.")
    warmup_proportion: float = setting(0.1, "Share of the steps over which the learning rate rises from 0.")
    warmup_steps: int = setting(0, "Warm-up steps; overrides the proportion if > 0.")
    # PaddleNLP's GLUE fine-tuning and TinyBERT example defaults: no weight decay, no clipping.
    weight_decay: float = setting(0.0, "AdamW weight decay (not on biases and LayerNorm).")
    adam_epsilon: float = setting(1e-6, "Epsilon of AdamW.")
    max_grad_norm: float = setting(0.0, "Clip the gradient norm (0: off).")
    seed: int = setting(42, "Seed of data order, dropout, new weights.")
    # Read by the scripts, which sample their training examples (tasks.sample_rows) before encoding them.
    max_train_examples: int = setting(0, SAMPLE_HELP)
    logging_steps: int = setting(100, "Log the mean loss every N steps.")
    save_steps: int = setting(
        100, "Evaluate every N steps (the best in OUTPUT_DIR/best_model) and maybe write the resumable "
             "OUTPUT_DIR/last (docs/operations.md, checkpoint cadence).")
    checkpoint_minutes: float = setting(5.0, "Least minutes between two writes of last/ (0: every --save_steps the budget allows).")
    checkpoint_budget: float = setting(0.02, "Largest share of the run's time spent writing last/ (0: no limit).")
    amp: bool = setting(False, "Mixed precision (GPU only).", aliases=("--use_amp",))
    amp_dtype: str = setting("float16", "Half type of --amp.",
                             choices=("float16", "bfloat16"))
    # Length-grouped batches carry far less padding; the distillation stages turn them on by default.
    group_by_length: bool = setting(
        False, "Random batches of rows of about one length, so each carries little padding.",
        negation="Turn off --group_by_length: plain random batches.")
    logging_dir: str | None = setting(
        None, "Folder of the VisualDL records (default OUTPUT_DIR/visualdl; 'none' writes none).")
    # VisualDL records: OUTPUT_DIR/visualdl unless a folder is named; False (--logging_dir none) writes none.
    visualdl: bool = True
    # The whole command line of the stage, recorded in train_log.jsonl and trainer_state.json.
    run_args: dict[str, Any] = field(default_factory=dict, compare=False)
    # What defines the run besides its settings: the script, and each input's content hash (cli.start_training
    # fills it in); recorded in trainer_state.json, and --resume refuses another.
    identity: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.logging_dir, str) and self.logging_dir.lower() == "none":
            object.__setattr__(self, "logging_dir", None)  # frozen: set once, while being built
            object.__setattr__(self, "visualdl", False)
        self.check()

    def check(self) -> None:
        """Reject settings that cannot work, with the flag named."""
        for name in ("batch_size", "gradient_accumulation_steps", "logging_steps", "save_steps"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise UserError("nothing to train: give --num_train_epochs > 0 or --max_steps > 0")
        if self.max_train_examples < 0:
            raise UserError(f"--max_train_examples must be >= 0 (0: all rows), got {self.max_train_examples}")
        if not 0 <= self.warmup_proportion <= 1:
            raise UserError(f"--warmup_proportion must be within [0, 1], got {self.warmup_proportion}")
        if not self.learning_rate > 0:
            raise UserError(f"--learning_rate must be positive, got {self.learning_rate}")
        if self.checkpoint_minutes < 0 or not 0 <= self.checkpoint_budget < 1:
            raise UserError("--checkpoint_minutes must be >= 0 and --checkpoint_budget within [0, 1)")
        if self.resume and self.overwrite_output_dir:
            raise UserError("--resume and --overwrite_output_dir contradict each other; pick one")
