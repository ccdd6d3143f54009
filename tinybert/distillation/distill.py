"""Task-specific TinyBERT distillation (Jiao et al. 2020, Sec. 3.2), the parts task_distill.py wires together:
the frozen teacher, the student (loaded, or built and initialised from the teacher), the projection W_h,
each stage's loss function and what each stage trains.

    teacher = load_teacher(teacher_dir, "bert", spec)
    student = build_student("tinybert", spec, teacher, tokenizer, name_or_path=STUDENT_DIR)
    loss_fn = intermediate_loss_fn(teacher, layer_map, fit_projection(student, teacher), weights)

Teacher and student may be of different families (bert, tinybert, ernie) when they read the same token ids
(same vocabulary) and predict the same labels. W_h is the student's own fit_dense(s) (tinybert), or, for a
student without one (bert, ernie) that is narrower than its teacher, a DistillProjection made here: trained in
the intermediate stage, saved beside the student as PROJECTION_FILE (the student's folder stays one that
PaddleNLP loads, and inference never needs it), restored on --resume as one of the trainer's extra parameters.
"""
from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import paddle

from tinybert.models import checkpoints
from tinybert import errors
import losses
from tinybert.models import modeling
from tinybert.data import tasks
from tinybert.training import trainer
from tinybert.data.tokenization import BertTokenizer

if TYPE_CHECKING:
    from tinybert.distillation.config import DistillSetup

INPUT_KEYS = ("input_ids", "token_type_ids", "attention_mask")
DISTILL_INFO_FILE = "distill_info.json"
PROJECTION_FILE = "distill_projection.pdparams"  # a DistillProjection's weight and bias, beside the student


# ------------------------------------------------------------------------------------------ models

def load_teacher(path: str | Path, model_type: str, spec: tasks.TaskSpec,
                 config: modeling.BertConfig | None = None) -> modeling.PretrainedBert:
    """The fine-tuned teacher, frozen: eval mode (no dropout) and no gradients to its weights. config: its
    config when already read (else read from the folder)."""
    teacher = modeling.model_class(model_type, "classification").from_pretrained(path, config=config)
    tasks.check_label_order(spec, teacher.config.label2id)
    if teacher.config.num_labels != spec.num_labels:
        raise errors.UserError(f"the teacher has {teacher.config.num_labels} outputs but {spec.name} needs "
                            f"{spec.num_labels}: fine-tune a teacher on this task first (finetune_teacher.py)")
    teacher.eval()
    for p in teacher.parameters():
        p.stop_gradient = True
    return teacher


def student_config(spec_text: str, teacher_config: modeling.BertConfig,
                   config_class: type[modeling.BertConfig] = modeling.BertConfig) -> modeling.BertConfig:
    """--student_config: a JSON file or folder (missing fields from the teacher), or 'key=value,...'.

    config_class: the student's (ErnieConfig for an ERNIE student); fields the teacher's config lacks (an
    ERNIE student of a BERT teacher: use_task_id, ...) take config_class's defaults."""
    base = {**config_class().to_dict(), **teacher_config.to_dict()}
    path = Path(spec_text).expanduser()
    given = None
    if path.is_dir():
        found = checkpoints.read_config_dict(path)
        if found is None:
            raise errors.UserError(f"--student_config {spec_text}: the folder has no {checkpoints.CONFIG_JSON} "
                                   f"or {checkpoints.CONFIG_PADDLENLP}")
        given = found[1]
    elif path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise errors.UserError(f"--student_config {spec_text}: file not found")
        given = checkpoints.read_json(path, "model config")
        if not isinstance(given, dict):
            raise errors.DataError(path, None, "not a model config (a JSON object of config fields)")
    if given is not None:
        if "init_args" in given:  # PaddleNLP 2.x form: a complete config
            return config_class.from_dict(given)
        return config_class.from_dict({**base, **given})
    overrides: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in spec_text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in base:
            raise errors.UserError(f"--student_config {spec_text!r}: expected a JSON file or key=value pairs of "
                                f"config fields (e.g. num_hidden_layers=3); {item!r} is neither")
        overrides[key] = _config_value(base[key], value.strip(), item)
    return config_class.from_dict({**base, **overrides})


def _config_value(current: Any, text: str, item: str) -> Any:
    """An inline --student_config value, typed like the field's current value (use_task_id=true, ...)."""
    if isinstance(current, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise errors.UserError(f"--student_config: {item!r}: expected true or false")
        return text.lower() in ("true", "1")
    try:
        return type(current)(text) if isinstance(current, (int, float)) else text
    except ValueError:
        raise errors.UserError(f"--student_config: {item!r}: expected a {type(current).__name__}") from None


def build_student(model_type: str, spec: tasks.TaskSpec, teacher: modeling.PretrainedBert,
                  tokenizer: BertTokenizer, name_or_path: str | Path | None = None,
                  config_text: str | None = None, config: modeling.BertConfig | None = None
                  ) -> modeling.PretrainedBert:
    """The student as a classification model with the task's labels and fit_dense sized to the teacher:
    loaded from `name_or_path`, or new from `config_text` (see student_config). Any family may learn from
    any other; both must read the same token ids (the same vocab file, and a student vocab_size no smaller
    than the teacher's vocabulary), and a student folder whose classifier names its labels must have the
    teacher's (the task's). config: the student's config when already read or built (DistillSetup)."""
    labels = dict(num_labels=spec.num_labels, label2id=spec.label2id)
    fit = dict(fit_size=teacher.config.hidden_size)
    cls = modeling.model_class(model_type, "classification")
    if name_or_path:
        folder = checkpoints.resolve_model_dir(name_or_path)
        config = config or modeling.read_config(folder, cls.config_class)
        check_same_vocab(folder, tokenizer)
        check_student_labels(folder, config, spec, teacher)
        check_vocab_size(config.vocab_size, tokenizer)
        student = cls.from_pretrained(folder, config=config, **labels, **fit)
    else:
        config = config or student_config(config_text, teacher.config, cls.config_class)
        check_vocab_size(config.vocab_size, tokenizer)
        d = {**config.to_dict(), **fit, "id2label": None, **labels}
        student = cls(cls.config_class.from_dict(d))
    student.train()
    return student


def check_vocab_size(vocab_size: int, tokenizer: BertTokenizer) -> None:
    """Every token id of the teacher's vocabulary needs a row in the student's (a larger table is fine)."""
    if vocab_size < tokenizer.vocab_size:
        raise errors.UserError(f"the student's vocab_size {vocab_size} is smaller than the teacher's "
                               f"vocabulary ({tokenizer.vocab_size} tokens): both must read the same token ids")


def check_student_labels(student_dir: Path, saved: modeling.BertConfig, spec: tasks.TaskSpec,
                         teacher: modeling.PretrainedBert) -> None:
    """A student folder saved with a classifier that names its labels (another task's, or the same task's in
    another order) would have them silently replaced or misread: an error naming both. saved: its config."""
    if not checkpoints.has_classifier(student_dir):
        return  # an encoder (general TinyBERT, ERNIE): its new classifier takes the teacher's labels
    if saved.label2id and saved.num_labels != teacher.config.num_labels:
        raise errors.UserError(f"the student {student_dir} has a classifier for {saved.num_labels} labels but the "
                               f"teacher predicts {teacher.config.num_labels}: distil into a student without a "
                               f"classifier, or one trained on the teacher's task")
    try:
        tasks.check_label_order(spec, saved.label2id)
    except errors.UserError as e:
        raise errors.UserError(f"the student {student_dir}: {e}") from None


def check_same_vocab(student_dir: Path, tokenizer: BertTokenizer) -> None:
    """Teacher and student read the same token ids: a student folder with another vocab.txt is an error."""
    vocab = student_dir / "vocab.txt"
    if not vocab.is_file():  # PaddleNLP's cache keeps the download's name (NAME-vocab.txt, ernie_3.0_..._vocab.txt)
        found = sorted(student_dir.glob("*vocab.txt"))
        vocab = found[0] if len(found) == 1 else vocab
    if vocab.is_file():
        from tinybert.data.tokenization import read_vocab
        if read_vocab(vocab) != tokenizer.vocab:
            raise errors.UserError(f"{vocab} differs from the teacher's vocabulary: a student must use the "
                                f"teacher's vocab.txt, since both read the same token ids")


def load_models(setup: DistillSetup, spec: tasks.TaskSpec, tokenizer: BertTokenizer, seed: int
                ) -> tuple[modeling.PretrainedBert, modeling.PretrainedBert]:
    """(teacher, student) of a resolved setup, nothing read twice; the student's random weights drawn from
    `seed`, so a random or partly random student is the same on every run and process."""
    teacher = load_teacher(setup.teacher_dir, setup.teacher_type, spec, setup.teacher_config)
    trainer.set_seed(seed)
    student = build_student(setup.student_type, spec, teacher, tokenizer, setup.student_dir,
                            config=setup.student_config)
    if setup.init_from_teacher:
        init_student_from_teacher(student, teacher, setup.layer_map)
    return teacher, student


def init_student_from_teacher(student: modeling.PretrainedBert, teacher: modeling.PretrainedBert,
                              layer_map: Sequence[int]) -> None:
    """Copy the teacher's embeddings, pooler and layer g(m) into student layer m (shapes must agree).

    Across families the shared weights are copied; a weight the teacher lacks keeps its initial value (an
    ERNIE 3.0 student's task_type_embeddings from a BERT teacher)."""
    s, t = student.base, teacher.base
    pairs = [(s.embeddings, t.embeddings, "embeddings"), (s.pooler, t.pooler, "pooler")]
    pairs += [(s.encoder.layers[m], t.encoder.layers[n - 1], f"layer {n}")
              for m, n in enumerate(layer_map)]
    for dst, src, what in pairs:
        src_state = src.state_dict()
        for name, value in dst.state_dict().items():
            if name not in src_state:
                continue
            if tuple(src_state[name].shape) != tuple(value.shape):
                raise errors.UserError(f"--init_from_teacher: the teacher's {what} weight {name} has shape "
                                    f"{list(src_state[name].shape)}, the student's {list(value.shape)}; copying "
                                    f"needs the teacher's widths (hidden_size, intermediate_size, vocab)")
            value.set_value(src_state[name])


PROJECTION_MODES = ("always", "when_narrower")


class DistillProjection(paddle.nn.Linear):
    """W_h (and W_e) of a student without fit_dense (bert, ernie) narrower than its teacher: student width ->
    teacher width, one layer for every state as the original fit_dense, initialised as fit_dense is
    (N(0, initializer_range), zero bias). It belongs to the distillation, not to the student: the student's
    weights stay a PaddleNLP model's, and this is saved beside them as PROJECTION_FILE."""

    def __init__(self, in_width: int, out_width: int, std: float):
        normal = paddle.nn.initializer.Normal(mean=0.0, std=std)
        super().__init__(in_width, out_width, weight_attr=paddle.ParamAttr(initializer=normal))

    def save(self, folder: Path) -> None:
        checkpoints.save_paddle({"weight": self.weight.numpy(), "bias": self.bias.numpy()},
                                Path(folder) / PROJECTION_FILE)

    def load(self, folder: Path) -> bool:
        """Continue from the projection saved in `folder` (an earlier intermediate stage's), if it fits."""
        path = Path(folder) / PROJECTION_FILE
        if not path.is_file():
            return False
        state = checkpoints.load_state(path)
        own = {"weight": self.weight, "bias": self.bias}
        if any(k not in state or list(state[k].shape) != list(p.shape) for k, p in own.items()):
            print(f"note: {path} is not a {self.weight.shape[0]} -> {self.weight.shape[1]} projection; "
                  f"this run starts a new one", file=sys.stderr)
            return False
        for k, p in own.items():
            p.set_value(state[k].astype("float32"))
        return True


def fit_projection(student: modeling.PretrainedBert, teacher: modeling.PretrainedBert,
                   mode: str = "always", student_dir: str | Path | None = None) -> list | None:
    """W_e and W_h (paper eq. 8-9) as one layer per student hidden state, [m] for hidden_states[m]
    (0 = the embeddings), or None: states are compared unprojected.

    Which layers: the student's per-layer fit_denses when it has them (PaddleNLP's v2 general TinyBERT;
    PaddleNLP's task_distill uses fit_denses[i] for student state i), else its one fit_dense for every state
    (the original code). When: mode "always" at any width, as both references do; "when_narrower" only when
    the student is narrower than the teacher.

    A student without fit_dense (bert, ernie) has no W_h of its own: as wide as the teacher it is compared
    unprojected (either mode); narrower (or wider), it gets a DistillProjection, the same layer for every
    state, continued from student_dir's PROJECTION_FILE when that folder has one (an earlier stage 1's output).
    """
    if mode not in PROJECTION_MODES:
        raise ValueError(f"projection mode {mode!r}: choose from {PROJECTION_MODES}")
    s_width, t_width = student.config.hidden_size, teacher.config.hidden_size
    base = student.base
    fit_dense = getattr(base, "fit_dense", None)
    if fit_dense is None:
        if s_width == t_width:
            return None
        projection = DistillProjection(s_width, t_width, student.config.initializer_range)
        if student_dir is not None:
            projection.load(checkpoints.resolve_model_dir(student_dir))
        return [projection] * (student.config.num_hidden_layers + 1)
    if mode == "when_narrower" and s_width == t_width:
        return None
    fit_denses = getattr(base, "fit_denses", None)
    if fit_denses is not None:
        return list(fit_denses)
    return [fit_dense] * (student.config.num_hidden_layers + 1)


# ------------------------------------------------------------------------------------------ the frozen teacher

TEACHER_RUNTIMES = ("eager", "static", "inference")
DEFAULT_TEACHER_RUNTIME = "static"


@dataclass
class TeacherStates:
    """The teacher states the intermediate loss reads, indexed as the full output's: hidden_states[n]
    (0 = embeddings) and attention_scores[n - 1] for the mapped layers n; other indices were not computed."""
    hidden_states: dict[int, paddle.Tensor]
    attention_scores: dict[int, paddle.Tensor]


def needed_states(layer_map: Sequence[int], weights: dict[str, float]) -> tuple[list[int], list[int]]:
    """(hidden_states indices, attention_scores indices) that losses.intermediate_loss reads with these
    weights (a term of weight 0 reads nothing)."""
    w = {"emb": 1.0, "hidden": 1.0, "attn": 1.0, **(weights or {})}
    hidden = sorted(({0} if w["emb"] else set()) | (set(layer_map) if w["hidden"] else set()))
    attn = sorted({n - 1 for n in layer_map}) if w["attn"] else []
    return hidden, attn


def teacher_depth(hidden: Sequence[int], attn: Sequence[int]) -> int:
    """Teacher layers to run for these states: hidden state n comes out of layer n, scores i of layer i + 1."""
    return max([*hidden, *(i + 1 for i in attn)])


class MappedStates(paddle.nn.Layer):
    """teacher.base run only as deep as the deepest needed state, returning just the needed tensors as one
    flat tuple (hidden states first): the form a static graph takes and returns."""

    def __init__(self, base: modeling.BertModel, hidden: Sequence[int], attn: Sequence[int]):
        super().__init__()
        self.base = base
        self.hidden, self.attn = list(hidden), list(attn)
        self.depth = teacher_depth(self.hidden, self.attn)

    def forward(self, input_ids, token_type_ids, attention_mask):
        out = self.base(input_ids, token_type_ids, attention_mask, True, True, self.depth)
        return tuple(out.hidden_states[i] for i in self.hidden) + tuple(out.attention_scores[i] for i in self.attn)

    def states(self, outputs: Sequence[paddle.Tensor]) -> TeacherStates:
        k = len(self.hidden)
        return TeacherStates(dict(zip(self.hidden, outputs[:k])), dict(zip(self.attn, outputs[k:])))


class FlatStates(paddle.nn.Layer):
    """MappedStates' tensors flattened per example and joined into one [B, sum of sizes] tensor: the
    Paddle Inference runner returns one output."""

    def __init__(self, mapped: MappedStates):
        super().__init__()
        self.mapped = mapped

    def forward(self, input_ids, token_type_ids, attention_mask):
        outputs = self.mapped(input_ids, token_type_ids, attention_mask)
        return paddle.concat([t.reshape([0, -1]) for t in outputs], axis=1)


def full_inputs(inputs: dict[str, paddle.Tensor], pad_token_id: int) -> list[paddle.Tensor]:
    """input_ids, token_type_ids, attention_mask, each given (the graph takes all three): the model's own
    defaults for a missing one (token type 0; pad tokens masked)."""
    ids = inputs["input_ids"]
    types = inputs.get("token_type_ids")
    mask = inputs.get("attention_mask")
    types = paddle.zeros_like(ids) if types is None else types
    mask = (ids != pad_token_id).astype("int64") if mask is None else mask
    return [ids, types, mask]


def input_spec() -> list:
    """Dynamic batch and sequence dims: one graph serves every padded length."""
    from paddle.static import InputSpec
    return [InputSpec([None, None], "int64", name) for name in INPUT_KEYS]


class TeacherRunner:
    """The frozen teacher of the intermediate stage as a function of the model inputs -> TeacherStates.

    runtime "eager": teacher.base under no_grad, as written; "static": the same Layer through
    paddle.jit.to_static (one program, dynamic shapes); "inference": a Paddle Inference predictor with
    oneDNN (inference.paddle_inference_runner) over a copy of the teacher exported to a temporary folder."""

    def __init__(self, teacher: modeling.PretrainedBert, layer_map: Sequence[int], weights: dict[str, float],
                 runtime: str = DEFAULT_TEACHER_RUNTIME):
        if runtime not in TEACHER_RUNTIMES:
            raise errors.UserError(f"--teacher_runtime {runtime}: choose from {', '.join(TEACHER_RUNTIMES)}")
        hidden, attn = needed_states(layer_map, weights)
        self.runtime = runtime
        self.mapped = MappedStates(teacher.base, hidden, attn)
        self.pad_token_id = teacher.config.pad_token_id
        self.depth = self.mapped.depth
        self._run = {"eager": self._eager_runner, "static": self._static_runner,
                     "inference": self._inference_runner}[runtime]()

    def __call__(self, inputs: dict[str, paddle.Tensor]) -> TeacherStates:
        with paddle.no_grad():  # the teacher is fixed: no graph, no gradient
            return self._run(full_inputs(inputs, self.pad_token_id))

    def _eager_runner(self):
        return lambda args: self.mapped.states(self.mapped(*args))

    def _static_runner(self):
        static = paddle.jit.to_static(self.mapped.forward, input_spec=input_spec(), full_graph=True)

        def run_states(args: list[paddle.Tensor]) -> TeacherStates:
            with warnings.catch_warnings():  # tracing (first call) asks tensors for .place, which PIR lacks
                warnings.filterwarnings("ignore", message=".*do not have 'place' interface")
                return self.mapped.states(static(*args))

        return run_states

    def _inference_runner(self):
        import shutil
        import tempfile

        from tinybert import inference

        folder = Path(tempfile.mkdtemp(prefix="teacher_graph_"))
        try:
            training = self.mapped.base.training
            graph = inference.static_graph(FlatStates(self.mapped), input_spec(), folder / "teacher")
            if training:  # static_graph exports in eval mode; the caller's teacher keeps its own
                self.mapped.base.train()
            device = "gpu" if paddle.device.get_device().startswith("gpu") else "cpu"  # the training's
            run = inference.paddle_inference_runner(graph, folder / "teacher.pdiparams", INPUT_KEYS, device)
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the predictor holds its weights in memory
        base = self.mapped.base
        heads, width = base.config.num_attention_heads, base.config.hidden_size

        def run_states(args: list[paddle.Tensor]) -> TeacherStates:
            flat = run({k: t.numpy() for k, t in zip(INPUT_KEYS, args)})
            b, s = args[0].shape
            shapes = [(b, s, width)] * len(self.mapped.hidden) + [(b, heads, s, s)] * len(self.mapped.attn)
            ends = np.cumsum([int(np.prod(shape[1:])) for shape in shapes])
            parts = np.split(flat, ends[:-1], axis=1)
            return self.mapped.states([paddle.to_tensor(p.reshape(shape)) for p, shape in zip(parts, shapes)])

        return run_states


# ------------------------------------------------------------------------------------------ losses

def model_inputs(batch: dict[str, paddle.Tensor]) -> dict[str, paddle.Tensor]:
    return {k: batch[k] for k in INPUT_KEYS if k in batch}


def intermediate_loss_fn(teacher: modeling.PretrainedBert, layer_map: Sequence[int], projection,
                         weights: dict[str, float], teacher_runtime: str = DEFAULT_TEACHER_RUNTIME
                         ) -> trainer.LossFn:
    """Stage 1 loss: embeddings, hidden states and pre-softmax attention scores of mapped layers;
    projection: fit_projection's list (student state m through projection[m]) or None; teacher_runtime:
    how the frozen teacher runs (TeacherRunner), the same states from each."""
    run_teacher = TeacherRunner(teacher, layer_map, weights, teacher_runtime)

    def loss_fn(student: modeling.PretrainedBert, batch: dict[str, paddle.Tensor]):
        inputs = model_inputs(batch)
        t_out = run_teacher(inputs)
        # The encoder only (num_layers named: no pooler, no classifier); they have nothing to learn here.
        s_out = student.base(**inputs, output_hidden_states=True, output_attention_scores=True,
                             num_layers=student.config.num_hidden_layers)
        return losses.intermediate_loss(s_out, t_out, layer_map, batch["attention_mask"], projection, weights)

    return loss_fn


def prediction_loss_fn(teacher: modeling.PretrainedBert, temperature: float, is_regression: bool,
                       alpha: float = 0.0, pred_weight: float = 1.0) -> trainer.LossFn:
    """Stage 2 loss: pred_weight * the student's logits against the teacher's (cached in the batch, or
    computed here) + alpha * the hard-label loss (losses.prediction_loss)."""

    def loss_fn(student: modeling.PretrainedBert, batch: dict[str, paddle.Tensor]):
        inputs = model_inputs(batch)
        teacher_logits = batch.get("teacher_logits")
        if teacher_logits is None:
            with paddle.no_grad():
                teacher_logits = teacher(**inputs).logits
        student_logits = student(**inputs).logits
        return losses.prediction_loss(student_logits, teacher_logits, temperature, is_regression,
                                      batch.get("label"), alpha, pred_weight)

    return loss_fn


def trainable_parameters(student: modeling.PretrainedBert, stage: str, projection) -> list[paddle.Tensor]:
    """What each stage trains: stage 1 the encoder and the projection layers it uses (fit_projection), a
    DistillProjection's weight and bias last (outside the student: the trainer saves them as extra
    parameters and restores them on --resume); stage 2 all but fit_dense and fit_denses. Unused projections
    are saved as loaded."""
    prefix = student.base_model_prefix + "."
    if stage == "intermediate":
        skip = ("classifier.", prefix + "pooler.")
        used = {id(p) for layer in projection or [] for p in layer.parameters()}
    else:
        skip, used = (), set()
    is_projection = lambda name: name.startswith(prefix + "fit_dense")  # noqa: E731  (fit_dense and fit_denses)
    params = [p for name, p in student.named_parameters()
              if not name.startswith(skip) and (not is_projection(name) or id(p) in used)]
    own = distill_projection(projection) if stage == "intermediate" else None
    return params + ([own.weight, own.bias] if own is not None else [])


def distill_projection(projection) -> DistillProjection | None:
    """The DistillProjection in fit_projection's list, or None (no projection, or the student's own)."""
    return projection[0] if projection and isinstance(projection[0], DistillProjection) else None


def describe_projection(projection) -> str:
    """One line for the log: what fit_projection chose."""
    if projection is None:
        return "none, states compared directly"
    if distill_projection(projection) is not None:
        return f"W_h of the distillation for every state (saved beside the student as {PROJECTION_FILE})"
    return "per-layer fit_denses" if len({id(layer) for layer in projection}) > 1 else "fit_dense for every state"


class Subset:
    """Some items of a dataset, in the order given (their lengths kept for length-sorted batches)."""

    def __init__(self, data: Any, indices: np.ndarray):
        self.data, self.indices = data, np.asarray(indices, dtype=np.int64)
        self.lengths = np.asarray(data.lengths)[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return self.data[int(self.indices[i])]


class WithTeacherLogits:
    """A dataset whose items also carry the teacher's logits, computed once (--cache_teacher_logits) for
    the items at `indices` (default: all): the only ones the run's steps draw."""

    def __init__(self, data: Any, logits: np.ndarray, indices: np.ndarray | None = None):
        self.data, self.lengths = data, data.lengths
        self.row = {int(i): r for r, i in enumerate(range(len(data)) if indices is None else indices)}
        self.logits = logits

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {**self.data[i], "teacher_logits": self.logits[self.row[int(i)]]}


def make_save_model(tokenizer: BertTokenizer, info: dict[str, Any], projection=None):
    """save_model(model, dir): student (fit_dense included) + tokenizer files + how it was distilled, and
    beside them the DistillProjection of fit_projection's list `projection`, if it holds one."""
    own = distill_projection(projection)

    def save_model(model: modeling.PretrainedBert, folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        checkpoints.write_json(Path(folder) / DISTILL_INFO_FILE, info)
        if own is not None:
            own.save(folder)

    return save_model


