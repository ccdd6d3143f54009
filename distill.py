"""Task-specific TinyBERT distillation (Jiao et al. 2020, Sec. 3.2), the parts task_distill.py wires together:
the frozen teacher, the student (loaded, or built and initialised from the teacher), the projection W_h,
each stage's loss function and what each stage trains.

    teacher = load_teacher(teacher_dir, "bert", spec)
    student = build_student("tinybert", spec, teacher, tokenizer, name_or_path=STUDENT_DIR)
    loss_fn = intermediate_loss_fn(teacher, layer_map, fit_projection(student, teacher), weights)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import paddle

import checkpoints
import errors
import losses
import modeling
import tasks
import trainer
from tokenization import BertTokenizer

INPUT_KEYS = ("input_ids", "token_type_ids", "attention_mask")
DISTILL_INFO_FILE = "distill_info.json"


# ------------------------------------------------------------------------------------------ models

def load_teacher(path: str, model_type: str, spec: tasks.TaskSpec) -> modeling.PretrainedBert:
    """The fine-tuned teacher, frozen: eval mode (no dropout) and no gradients to its weights."""
    teacher = modeling.model_class(model_type, "classification").from_pretrained(path)
    tasks.check_label_order(spec, teacher.config.label2id)
    if teacher.config.num_labels != spec.num_labels:
        raise errors.UserError(f"the teacher has {teacher.config.num_labels} outputs but {spec.name} needs "
                            f"{spec.num_labels}: fine-tune a teacher on this task first (finetune_teacher.py)")
    teacher.eval()
    for p in teacher.parameters():
        p.stop_gradient = True
    return teacher


def student_config(spec_text: str, teacher_config: modeling.BertConfig) -> modeling.BertConfig:
    """--student_config: a JSON file or folder (missing fields from the teacher), or 'key=value,...'."""
    base = teacher_config.to_dict()
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
            return modeling.BertConfig.from_dict(given)
        return modeling.BertConfig.from_dict({**base, **given})
    overrides: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in spec_text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in base:
            raise errors.UserError(f"--student_config {spec_text!r}: expected a JSON file or key=value pairs of "
                                f"config fields (e.g. num_hidden_layers=3); {item!r} is neither")
        overrides[key] = type(base[key])(value) if isinstance(base[key], (int, float)) else value
    return modeling.BertConfig.from_dict({**base, **overrides})


def build_student(model_type: str, spec: tasks.TaskSpec, teacher: modeling.PretrainedBert,
                  tokenizer: BertTokenizer, name_or_path: str | None = None,
                  config_text: str | None = None) -> modeling.PretrainedBert:
    """The student as a classification model with the task's labels and fit_dense sized to the teacher:
    loaded from `name_or_path`, or new from `config_text` (see student_config)."""
    labels = dict(num_labels=spec.num_labels, label2id=spec.label2id)
    fit = dict(fit_size=teacher.config.hidden_size)
    cls = modeling.model_class(model_type, "classification")
    if name_or_path:
        folder = checkpoints.resolve_model_dir(name_or_path)
        check_same_vocab(folder, tokenizer)
        student = cls.from_pretrained(folder, **labels, **fit)
    else:
        config = student_config(config_text, teacher.config)
        d = {**config.to_dict(), **fit, "id2label": None, **labels}
        student = cls(modeling.BertConfig.from_dict(d))
    if student.config.vocab_size < tokenizer.vocab_size:
        raise errors.UserError(f"the student's vocab_size {student.config.vocab_size} is smaller than the teacher's "
                            f"vocabulary ({tokenizer.vocab_size} tokens): both must read the same token ids")
    student.train()
    return student


def check_same_vocab(student_dir: Path, tokenizer: BertTokenizer) -> None:
    """Teacher and student read the same token ids: a student folder with another vocab.txt is an error."""
    vocab = student_dir / "vocab.txt"
    if vocab.is_file():
        from tokenization import read_vocab
        if read_vocab(vocab) != tokenizer.vocab:
            raise errors.UserError(f"{vocab} differs from the teacher's vocabulary: a student must use the "
                                f"teacher's vocab.txt, since both read the same token ids")


def init_student_from_teacher(student: modeling.PretrainedBert, teacher: modeling.PretrainedBert,
                              layer_map: Sequence[int]) -> None:
    """Copy the teacher's embeddings, pooler and layer g(m) into student layer m (shapes must agree)."""
    s, t = student.base, teacher.base
    pairs = [(s.embeddings, t.embeddings, "embeddings"), (s.pooler, t.pooler, "pooler")]
    pairs += [(s.encoder.layers[m], t.encoder.layers[n - 1], f"layer {n}")
              for m, n in enumerate(layer_map)]
    for dst, src, what in pairs:
        src_state = src.state_dict()
        for name, value in dst.state_dict().items():
            if tuple(src_state[name].shape) != tuple(value.shape):
                raise errors.UserError(f"--init_from_teacher: the teacher's {what} weight {name} has shape "
                                    f"{list(src_state[name].shape)}, the student's {list(value.shape)}; copying "
                                    f"needs the teacher's widths (hidden_size, intermediate_size, vocab)")
            value.set_value(src_state[name])


PROJECTION_MODES = ("always", "when_narrower")


def fit_projection(student: modeling.PretrainedBert, teacher: modeling.PretrainedBert,
                   mode: str = "always") -> list | None:
    """W_e and W_h (paper eq. 8-9) as one layer per student hidden state, [m] for hidden_states[m]
    (0 = the embeddings), or None: states are compared unprojected.

    Which layers: the student's per-layer fit_denses when it has them (PaddleNLP's v2 general TinyBERT;
    PaddleNLP's task_distill uses fit_denses[i] for student state i), else its one fit_dense for every state
    (the original code). When: mode "always" at any width, as both references do; "when_narrower" only when
    the student is narrower than the teacher. A student without fit_dense (bert) is never projected, so it
    must be as wide as the teacher.
    """
    if mode not in PROJECTION_MODES:
        raise ValueError(f"projection mode {mode!r}: choose from {PROJECTION_MODES}")
    s_width, t_width = student.config.hidden_size, teacher.config.hidden_size
    base = student.base
    fit_dense = getattr(base, "fit_dense", None)
    if fit_dense is None:
        if s_width != t_width:
            raise errors.UserError(f"the student is {s_width} wide and the teacher {t_width}: a narrower student "
                                   f"needs fit_dense, use --model_type tinybert")
        return None
    if mode == "when_narrower" and s_width == t_width:
        return None
    fit_denses = getattr(base, "fit_denses", None)
    if fit_denses is not None:
        return list(fit_denses)
    return [fit_dense] * (student.config.num_hidden_layers + 1)


# ------------------------------------------------------------------------------------------ losses

def model_inputs(batch: dict[str, paddle.Tensor]) -> dict[str, paddle.Tensor]:
    return {k: batch[k] for k in INPUT_KEYS if k in batch}


def intermediate_loss_fn(teacher: modeling.PretrainedBert, layer_map: Sequence[int], projection,
                         weights: dict[str, float]) -> trainer.LossFn:
    """Stage 1 loss: embeddings, hidden states and pre-softmax attention scores of mapped layers;
    projection: fit_projection's list (student state m through projection[m]) or None."""
    depth = max(layer_map)

    def loss_fn(student: modeling.PretrainedBert, batch: dict[str, paddle.Tensor]):
        inputs = model_inputs(batch)
        with paddle.no_grad():  # the teacher is fixed: no graph, no gradient
            t_out = teacher.base(**inputs, output_hidden_states=True, output_attention_scores=True,
                                 num_layers=depth)
        # The encoder only (num_layers named: no pooler, no classifier); they have nothing to learn here.
        s_out = student.base(**inputs, output_hidden_states=True, output_attention_scores=True,
                             num_layers=student.config.num_hidden_layers)
        return losses.intermediate_loss(s_out, t_out, layer_map, batch["attention_mask"], projection, weights)

    return loss_fn


def prediction_loss_fn(teacher: modeling.PretrainedBert, temperature: float, is_regression: bool,
                       alpha: float = 0.0) -> trainer.LossFn:
    """Stage 2 loss: the student's logits against the teacher's (cached in the batch, or computed here)."""

    def loss_fn(student: modeling.PretrainedBert, batch: dict[str, paddle.Tensor]):
        inputs = model_inputs(batch)
        teacher_logits = batch.get("teacher_logits")
        if teacher_logits is None:
            with paddle.no_grad():
                teacher_logits = teacher(**inputs).logits
        student_logits = student(**inputs).logits
        return losses.prediction_loss(student_logits, teacher_logits, temperature, is_regression,
                                      batch.get("label"), alpha)

    return loss_fn


def trainable_parameters(student: modeling.PretrainedBert, stage: str, projection) -> list[paddle.Tensor]:
    """What each stage trains: stage 1 the encoder and the projection layers it uses (fit_projection);
    stage 2 all but fit_dense and fit_denses. Unused projections are saved as loaded."""
    prefix = student.base_model_prefix + "."
    if stage == "intermediate":
        skip = ("classifier.", prefix + "pooler.")
        used = {id(p) for layer in projection or [] for p in layer.parameters()}
    else:
        skip, used = (), set()
    is_projection = lambda name: name.startswith(prefix + "fit_dense")  # noqa: E731  (fit_dense and fit_denses)
    return [p for name, p in student.named_parameters()
            if not name.startswith(skip) and (not is_projection(name) or id(p) in used)]


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


def make_save_model(tokenizer: BertTokenizer, info: dict[str, Any]):
    """save_model(model, dir): student (fit_dense included) + tokenizer files + how it was distilled."""

    def save_model(model: modeling.PretrainedBert, folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        checkpoints.write_json(Path(folder) / DISTILL_INFO_FILE, info)

    return save_model


