"""Task-specific TinyBERT distillation (Jiao et al. 2020, Sec. 3.2): a fine-tuned BERT teacher teaches a
small student on one task's data, in two stages.

  intermediate (--intermediate_distill, or --stage intermediate)
      L = w_emb L_embd + w_hid sum_m L_hidn(m) + w_att sum_m L_attn(m), student layer m against teacher layer
      g(m) (layer_mapping.py). The teacher runs without gradients, only as deep as the deepest mapped layer.
      Trains the student's embeddings, encoder and fit_dense; saves OUTPUT_DIR/last every epoch and at the end.
  prediction (the default, as in PaddleNLP)
      L = L_pred(z^S, z^T; T) + alpha * hard-label loss; MSE instead of L_pred for regression (STS-B).
      Starts from the intermediate stage's output; evaluates on dev, keeps the best in OUTPUT_DIR/best_model.

PaddleNLP's recipe runs with paths changed:

    python task_distill.py --model_type tinybert --model_name_or_path STUDENT_DIR --task_name SST-2 \
        --intermediate_distill --max_seq_length 64 --batch_size 32 --T 1 --teacher_model_type bert \
        --teacher_path TEACHER_DIR --learning_rate 5e-5 --num_train_epochs 10 --logging_steps 10 \
        --save_steps 10 --output_dir OUT1 --device cpu
    python task_distill.py ... --model_name_or_path OUT1/last --output_dir OUT2    # prediction stage

The student is a TinyBERT folder (general TinyBERT, or stage 1's output), or built from --student_config,
initialised from the teacher (--init_from_teacher: embeddings and the mapped layers) or at random.
Training (resume, checkpoints, AMP, several devices) is trainer.py's loop; this file only supplies the losses.
"""
import cli  # noqa: F401  (first: sets MKL_DEBUG_CPU_TYPE before paddle loads)


import errors
import argparse
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import paddle

import layer_mapping
import losses
import modeling
import tasks
import trainer
from tokenization import BertTokenizer

INPUT_KEYS = ("input_ids", "token_type_ids", "attention_mask")
DISTILL_INFO_FILE = "distill_info.json"


# ------------------------------------------------------------------------------------------ arguments

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="TinyBERT task distillation: intermediate and prediction stages.")
    g = p.add_argument_group("models")
    g.add_argument("--model_type", "--student_model_type", default="tinybert", choices=["tinybert", "bert"],
                   help="Student architecture (tinybert has fit_dense, needed when narrower than the teacher).")
    g.add_argument("--model_name_or_path", "--student_model_name_or_path", default=None,
                   help="Student folder: a general TinyBERT (PaddleNLP layout or cache name), or the "
                        "intermediate stage's OUTPUT_DIR/last for the prediction stage.")
    g.add_argument("--student_config", default=None,
                   help="Instead of --model_name_or_path: a config.json (or folder with one) for a new student, "
                        "fields not given taken from the teacher; or inline overrides of the teacher's config, "
                        "e.g. 'num_hidden_layers=3' or 'num_hidden_layers=4,hidden_size=128,intermediate_size=512'.")
    g.add_argument("--init_from_teacher", action="store_true",
                   help="With --student_config: copy the teacher's embeddings and mapped layers g(m) into the "
                        "student (same width needed); otherwise the student starts random.")
    g.add_argument("--teacher_model_type", default="bert", choices=["bert", "tinybert"])
    g.add_argument("--teacher_path", required=True, help="The fine-tuned teacher folder (finetune_teacher.py).")

    g = p.add_argument_group("distillation")
    g.add_argument("--stage", choices=["intermediate", "prediction"], default=None,
                   help="Which stage to run (default prediction; --intermediate_distill selects intermediate).")
    g.add_argument("--intermediate_distill", action="store_true", help="PaddleNLP's flag for --stage intermediate.")
    g.add_argument("--layer_map", default="uniform",
                   help="Teacher layer of each student layer: uniform (g(m) = m*N/M), top, bottom, or a list "
                        "such as 3,6,9,12 (1-based teacher layers).")
    g.add_argument("--emb_weight", type=float, default=1.0, help="Weight of L_embd (intermediate stage).")
    g.add_argument("--hidden_weight", type=float, default=1.0, help="Weight of sum L_hidn (intermediate stage).")
    g.add_argument("--attn_weight", type=float, default=1.0, help="Weight of sum L_attn (intermediate stage).")
    g.add_argument("--T", type=float, default=1.0, help="Temperature of L_pred (prediction stage).")
    g.add_argument("--alpha", type=float, default=0.0,
                   help="Weight of the hard-label loss added to L_pred (prediction stage; 0 = pure distillation).")
    g.add_argument("--cache_teacher_logits", action="store_true",
                   help="Prediction stage: run the teacher over the training set once and reuse its logits "
                        "every epoch (same losses, about a third less compute per step).")
    g.add_argument("--max_seq_length", type=int, default=128)
    g.add_argument("--use_aug", action="store_true",
                   help="PaddleNLP's flag: train on train_aug.tsv beside the task's train.tsv "
                        "(data_augmentation.py's output); same as --train_file PATH/train_aug.tsv.")

    tasks.add_data_args(p)
    trainer.add_training_args(p)
    cli.add_device_args(p)
    p.set_defaults(learning_rate=5e-5)
    args = p.parse_args(argv)

    if args.intermediate_distill and args.stage == "prediction":
        raise errors.UserError("--intermediate_distill and --stage prediction contradict each other")
    args.stage = "intermediate" if args.intermediate_distill else (args.stage or "prediction")
    if args.T <= 0:
        raise errors.UserError(f"--T must be positive, got {args.T}")
    if not args.model_name_or_path and not args.student_config:
        raise errors.UserError("no student: give --model_name_or_path (a TinyBERT folder, or the intermediate "
                            "stage's OUTPUT_DIR/last) or --student_config")
    if args.model_name_or_path and args.student_config:
        raise errors.UserError("give either --model_name_or_path or --student_config, not both")
    if args.init_from_teacher and not args.student_config:
        raise errors.UserError("--init_from_teacher builds a new student: it needs --student_config")
    return args


def aug_train_file(args: argparse.Namespace) -> str:
    """--use_aug: train_aug.tsv in the folder of the task's train.tsv."""
    if args.train_file:
        raise errors.UserError("--use_aug and --train_file both name the training file; give one")
    if not tasks.is_glue_task(args.task_name):
        raise errors.UserError("--use_aug needs a GLUE --task_name; for other data give --train_file")
    spec = tasks.get_task(args.task_name)
    path = tasks.resolve_glue_file(spec, "train", args.data_dir, args.glue_dir).with_name("train_aug.tsv")
    if not path.is_file():
        raise errors.DataError(path, None, "file not found (--use_aug; write it with data_augmentation.py)")
    return str(path)


# ------------------------------------------------------------------------------------------ models

def load_teacher(args: argparse.Namespace, spec: tasks.TaskSpec) -> modeling.PretrainedBert:
    """The fine-tuned teacher, frozen: eval mode (no dropout) and no gradients to its weights."""
    teacher = modeling.model_class(args.teacher_model_type, "classification").from_pretrained(args.teacher_path)
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
    if path.is_dir():
        path = next((path / f for f in (modeling.CONFIG_JSON, modeling.CONFIG_PADDLENLP) if (path / f).is_file()),
                    path / modeling.CONFIG_JSON)
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise errors.UserError(f"--student_config {spec_text}: file not found")
        try:
            given = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise errors.DataError(path, e.lineno, f"not valid JSON ({e.msg})") from None
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


def build_student(args: argparse.Namespace, teacher: modeling.PretrainedBert, spec: tasks.TaskSpec,
                  tokenizer: BertTokenizer) -> modeling.PretrainedBert:
    """The student as a classification model with the task's labels and fit_dense sized to the teacher."""
    labels = dict(num_labels=spec.num_labels, label2id=spec.label2id)
    fit = dict(fit_size=teacher.config.hidden_size)
    cls = modeling.model_class(args.model_type, "classification")
    if args.model_name_or_path:
        folder = modeling.resolve_model_dir(args.model_name_or_path)
        check_same_vocab(folder, tokenizer)
        student = cls.from_pretrained(folder, **labels, **fit)
    else:
        config = student_config(args.student_config, teacher.config)
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


def fit_projection(student: modeling.PretrainedBert, teacher: modeling.PretrainedBert):
    """W_h: the student's fit_dense when it is narrower than the teacher, else None (no projection)."""
    s_width, t_width = student.config.hidden_size, teacher.config.hidden_size
    if s_width == t_width:
        return None
    fit_dense = getattr(student.base, "fit_dense", None)
    if fit_dense is None:
        raise errors.UserError(f"the student is {s_width} wide and the teacher {t_width}: a narrower student needs "
                            f"fit_dense, use --model_type tinybert")
    return fit_dense


# ------------------------------------------------------------------------------------------ losses

def model_inputs(batch: dict[str, paddle.Tensor]) -> dict[str, paddle.Tensor]:
    return {k: batch[k] for k in INPUT_KEYS if k in batch}


def intermediate_loss_fn(teacher: modeling.PretrainedBert, layer_map: Sequence[int], projection,
                         weights: dict[str, float]) -> trainer.LossFn:
    """Stage 1 loss: embeddings, hidden states and pre-softmax attention scores of mapped layers."""
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
    """What each stage trains: stage 1 the encoder (+ fit_dense when used); stage 2 all but fit_dense."""
    prefix = student.base_model_prefix + "."
    if stage == "intermediate":
        skip = ("classifier.", prefix + "pooler.") + (() if projection is not None else (prefix + "fit_dense.",))
    else:
        skip = (prefix + "fit_dense.",)
    return [p for name, p in student.named_parameters() if not name.startswith(skip)]


class WithTeacherLogits:
    """A dataset whose items also carry the teacher's logits (computed once: --cache_teacher_logits)."""

    def __init__(self, data: tasks.EncodedDataset, logits: np.ndarray):
        self.data, self.logits, self.lengths = data, logits, data.lengths

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {**self.data[i], "teacher_logits": self.logits[i]}


# ------------------------------------------------------------------------------------------ main

def make_save_model(tokenizer: BertTokenizer, info: dict[str, Any]):
    """save_model(model, dir): student (fit_dense included) + tokenizer files + how it was distilled."""

    def save_model(model: modeling.PretrainedBert, folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        (Path(folder) / DISTILL_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

    return save_model


def log(msg: str) -> None:
    if trainer.is_main_process():
        print(msg, flush=True)


@cli.run_main
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    cli.set_device(args.device)
    trainer.init_distributed()
    if args.use_aug:
        args.train_file = aug_train_file(args)
    spec, data = tasks.load_task_data(args, splits=("train", "dev"))

    tokenizer = BertTokenizer.from_pretrained(modeling.resolve_model_dir(args.teacher_path))
    teacher = load_teacher(args, spec)
    trainer.set_seed(args.seed)  # a random or partly random student is the same on every run and process
    student = build_student(args, teacher, spec, tokenizer)
    M, N = student.config.num_hidden_layers, teacher.config.num_hidden_layers
    layer_map = layer_mapping.build_layer_map(M, N, args.layer_map)
    if args.init_from_teacher:
        init_student_from_teacher(student, teacher, layer_map)
    log(f"{args.stage} stage on {spec.name}: teacher {N} layers x {teacher.config.hidden_size} "
        f"({modeling.count_parameters(teacher):,} parameters), student {M} layers x {student.config.hidden_size} "
        f"({modeling.count_parameters(student):,} parameters)")

    collate = lambda items: tasks.collate(items, tokenizer.pad_token_id)  # noqa: E731
    train_data = tasks.encode_examples(tokenizer, data["train"], args.max_seq_length, spec)
    info = {"stage": args.stage, "task": spec.name, "teacher": str(args.teacher_path), "layer_map": layer_map}

    if args.stage == "intermediate":
        if args.cache_teacher_logits:
            log("note: --cache_teacher_logits applies to the prediction stage; the intermediate stage needs "
                "the teacher's hidden states, which are computed per batch")
        weights = {"emb": args.emb_weight, "hidden": args.hidden_weight, "attn": args.attn_weight}
        if weights["attn"] and student.config.num_attention_heads != teacher.config.num_attention_heads:
            raise errors.UserError(f"attention distillation needs as many heads in the student "
                                f"({student.config.num_attention_heads}) as in the teacher "
                                f"({teacher.config.num_attention_heads}); change the student or --attn_weight 0")
        log(layer_mapping.describe_layer_map(layer_map)
            + f"; teacher runs {max(layer_map)} of {N} layers")
        projection = fit_projection(student, teacher)
        loss_fn = intermediate_loss_fn(teacher, layer_map, projection, weights)
        summary = trainer.train(student, train_data, loss_fn, args, save_model=make_save_model(tokenizer, info),
                                parameters=trainable_parameters(student, "intermediate", projection),
                                collate_fn=collate, save_at_epoch_end=True)
        log(f"next: the prediction stage with --model_name_or_path {Path(args.output_dir) / trainer.LAST_DIR}")
        return summary

    info["temperature"], info["alpha"] = args.T, args.alpha
    dev_sets = {split: tasks.encode_examples(tokenizer, data[split], args.max_seq_length, spec)
                for split in tasks.dev_splits(data)}
    evaluate = trainer.task_evaluator(spec, dev_sets, args.batch_size, collate)
    teacher_metrics = evaluate(teacher)
    log("teacher on dev: " + ", ".join(f"{k} {v:.4f}" for k, v in teacher_metrics.items()))
    if args.cache_teacher_logits:
        log("computing the teacher's logits over the training set once (--cache_teacher_logits)")
        train_data = WithTeacherLogits(train_data, trainer.predict_logits(teacher, train_data, args.batch_size,
                                                                         collate))
    loss_fn = prediction_loss_fn(teacher, args.T, spec.is_regression, args.alpha)
    summary = trainer.train(student, train_data, loss_fn, args, evaluate=evaluate,
                            save_model=make_save_model(tokenizer, info),
                            parameters=trainable_parameters(student, "prediction", None), collate_fn=collate)
    summary["teacher_metrics"] = teacher_metrics
    return summary


if __name__ == "__main__":
    main()
