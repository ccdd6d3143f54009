"""The settings of task distillation, each declared once: DistillConfig's fields are task_distill.py's model and
distillation flags (settings.py) and it checks them when built; DistillSetup is what the script resolves from
them once (folders, configs, layer map) and hands to distill.load_models."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from tinybert.distillation.distill import DEFAULT_TEACHER_RUNTIME, PROJECTION_MODES, TEACHER_RUNTIMES
from tinybert.errors import UserError
from tinybert.models import modeling
from tinybert.data.features import EncodeConfig
from tinybert.settings import like, setting

STAGES = ("intermediate", "prediction")
MODEL_TYPES = ("tinybert", "bert", "ernie")
WEIGHTS = ("emb_weight", "hidden_weight", "attn_weight", "alpha", "pred_weight")


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    """Which models distil how. Built, it holds the stage and projection resolved (--intermediate_distill,
    the student type's default projection) and has passed every check that needs no file."""
    model_type: str = setting(
        "tinybert", "Student architecture.",
        aliases=("--student_model_type",), choices=MODEL_TYPES, group="models")
    model_name_or_path: str | None = setting(
        None, "Student folder: a general TinyBERT, or the intermediate stage's OUTPUT_DIR/last.",
        aliases=("--student_model_name_or_path",), group="models")
    student_config: str | None = setting(
        None, "Instead of --model_name_or_path: a new student, as a config.json or as changes to the teacher's "
              "config (num_hidden_layers=4,hidden_size=312).",
        group="models")
    init_from_teacher: bool = setting(
        False, "With --student_config: start from the teacher's embeddings and mapped layers (same width).",
        group="models")
    teacher_model_type: str = setting(
        "bert", "Teacher architecture.",
        choices=("bert", "tinybert", "ernie"), group="models")
    teacher_path: str = setting(help="The fine-tuned teacher folder (finetune_teacher.py).", group="models")

    stage: str | None = setting(
        None, "Stage to run (default: prediction).",
        choices=STAGES, group="distillation")
    intermediate_distill: bool = setting(False, "Same as --stage intermediate (PaddleNLP's flag).", group="distillation")
    layer_map: str = setting(
        "uniform", "Teacher layer g(m) of each student layer: uniform, top, bottom, or a list such as 3,6,9,12.",
        group="distillation")
    projection: str | None = setting(
        None, "When the student's states go through W_h before the MSE: always (the default of tinybert "
              "students) or when_narrower (the only mode of bert and ernie students); see docs/recipes.md.",
        choices=PROJECTION_MODES, group="distillation")
    emb_weight: float = setting(1.0, "Weight of L_embd (intermediate stage).", group="distillation")
    hidden_weight: float = setting(1.0, "Weight of L_hidn (intermediate stage).", group="distillation")
    attn_weight: float = setting(1.0, "Weight of L_attn (intermediate stage).", group="distillation")
    teacher_runtime: str = setting(
        DEFAULT_TEACHER_RUNTIME, "How the frozen teacher runs in the intermediate stage: eager, static "
                                 "(paddle.jit.to_static) or inference (Paddle Inference); the same states.",
        choices=TEACHER_RUNTIMES, group="distillation")
    T: float = setting(1.0, "Temperature of L_pred.", group="distillation")
    alpha: float = setting(0.0, "Weight of the hard-label loss (prediction stage).", group="distillation")
    pred_weight: float = setting(
        1.0, "Weight of L_pred (prediction stage); 0 with --alpha 1 trains on the labels only.",
        group="distillation")
    cache_teacher_logits: bool = setting(
        False, "Prediction stage: the teacher's logits once, not every epoch.",
        group="distillation")
    max_seq_length: int = like(EncodeConfig, "max_seq_length", group="distillation")
    use_aug: bool = setting(
        False, "Train on train_aug.tsv beside the task's train.tsv (PaddleNLP's flag).",
        group="distillation")

    def __post_init__(self) -> None:
        if self.intermediate_distill and self.stage == "prediction":
            raise UserError("--intermediate_distill and --stage prediction contradict each other")
        # frozen: the resolved values are set once, while it is built
        object.__setattr__(self, "stage", "intermediate" if self.intermediate_distill else (self.stage or "prediction"))
        self.check_weights()
        self.check_student()
        if self.projection == "always" and self.model_type in ("bert", "ernie"):
            raise UserError("--projection always needs a student with fit_dense (--model_type tinybert); "
                            f"{self.model_type} students are projected only when narrower than the teacher")
        default = "always" if self.model_type == "tinybert" else "when_narrower"
        object.__setattr__(self, "projection", self.projection or default)

    def check_weights(self) -> None:
        if not (math.isfinite(self.T) and self.T > 0):
            raise UserError(f"--T must be a positive number (the temperature of L_pred), got {self.T}")
        for name in WEIGHTS:
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise UserError(f"--{name} must be a number >= 0, got {getattr(self, name)}")
        if self.stage == "intermediate" and not any(self.weights.values()):
            raise UserError("--emb_weight, --hidden_weight and --attn_weight are all 0: the intermediate stage "
                            "has nothing to distil; give one of them a weight > 0")
        if self.stage == "prediction" and not self.pred_weight and not self.alpha:
            raise UserError("--pred_weight 0 and --alpha 0 leave the prediction stage no loss: give one of "
                            "them a weight > 0")

    def check_student(self) -> None:
        if not self.model_name_or_path and not self.student_config:
            raise UserError("no student: give --model_name_or_path (a TinyBERT folder, or the intermediate "
                            "stage's OUTPUT_DIR/last) or --student_config")
        if self.model_name_or_path and self.student_config:
            raise UserError("give either --model_name_or_path or --student_config, not both")
        if self.init_from_teacher and not self.student_config:
            raise UserError("--init_from_teacher builds a new student: it needs --student_config")

    def check_models(self, teacher: modeling.BertConfig, student: modeling.BertConfig) -> None:
        """What needs both models' configs: attention distillation compares scores head by head."""
        if (self.stage == "intermediate" and self.attn_weight
                and student.num_attention_heads != teacher.num_attention_heads):
            raise UserError(f"attention distillation needs as many heads in the student "
                            f"({student.num_attention_heads}) as in the teacher ({teacher.num_attention_heads}); "
                            f"change the student or --attn_weight 0")

    @property
    def weights(self) -> dict[str, float]:
        """The intermediate loss weights as losses.intermediate_loss takes them."""
        return {"emb": self.emb_weight, "hidden": self.hidden_weight, "attn": self.attn_weight}


@dataclass(frozen=True)
class DistillSetup:
    """The models of one distillation, resolved once at the script's edge: each folder found, each config
    read, the layer map built; distill.load_models loads them from here without reading anything again."""
    teacher_type: str
    teacher_dir: Path
    teacher_config: modeling.BertConfig
    student_type: str
    student_dir: Path | None            # None: a new student built from student_config
    student_config: modeling.BertConfig
    layer_map: tuple[int, ...]
    init_from_teacher: bool = False
