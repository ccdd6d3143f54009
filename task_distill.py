"""Task-specific TinyBERT distillation (Jiao et al. 2020, Sec. 3.2): a fine-tuned BERT teacher teaches a
small student on one task's data, in two stages.

  intermediate (--intermediate_distill, or --stage intermediate)
      L = w_emb L_embd + w_hid sum_m L_hidn(m) + w_att sum_m L_attn(m), student layer m against teacher layer
      g(m) (layer_mapping.py). The teacher runs without gradients, only as deep as the deepest mapped layer
      (--teacher_runtime: eager Paddle, one static program, or Paddle Inference).
      Trains the student's embeddings, encoder and fit_dense; saves OUTPUT_DIR/last every epoch and at the end.
  prediction (the default, as in PaddleNLP)
      L = w_pred L_pred(z^S, z^T; T) + alpha * hard-label loss; MSE instead of L_pred for regression (STS-B).
      Starts from the intermediate stage's output; evaluates on dev, keeps the best in OUTPUT_DIR/best_model.

PaddleNLP's recipe runs with paths changed:

    python task_distill.py --model_type tinybert --model_name_or_path STUDENT_DIR --task_name SST-2 \
        --intermediate_distill --max_seq_length 64 --batch_size 32 --T 1 --teacher_model_type bert \
        --teacher_path TEACHER_DIR --learning_rate 5e-5 --num_train_epochs 10 --logging_steps 10 \
        --save_steps 10 --output_dir OUT1 --device cpu
    python task_distill.py ... --model_name_or_path OUT1/last --output_dir OUT2    # prediction stage

The student is a TinyBERT folder (general TinyBERT, or stage 1's output), or built from --student_config,
initialised from the teacher (--init_from_teacher: embeddings and the mapped layers) or at random.
Training (resume, checkpoints, AMP, several devices) is trainer.py's loop; the teacher, the student and the
losses are distill.py's; this script parses the flags and wires the stage.
"""
from tinybert import cli

import argparse
import math
from pathlib import Path
from typing import Any, Sequence

from tinybert.models import checkpoints
from tinybert.augmentation import outputs
from tinybert.distillation import distill
from tinybert import errors
from tinybert.training import evaluation
from tinybert.data import features
import layer_mapping
from tinybert.models import modeling
from tinybert.data import tasks
from tinybert.training import trainer
from tinybert.data.tokenization import BertTokenizer


# ------------------------------------------------------------------------------------------ arguments

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="TinyBERT task distillation: intermediate and prediction stages.",
                                formatter_class=cli.HelpFormatter)
    g = p.add_argument_group("models")
    g.add_argument("--model_type", "--student_model_type", default="tinybert", choices=["tinybert", "bert", "ernie"],
                   help="Student architecture (tinybert has its own fit_dense; a narrower bert or ernie student "
                        "gets W_h from the distillation, saved beside it as distill_projection.pdparams).")
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
    g.add_argument("--teacher_model_type", default="bert", choices=["bert", "tinybert", "ernie"],
                   help="Teacher architecture; any family teaches any other when both use the same vocabulary.")
    g.add_argument("--teacher_path", required=True, help="The fine-tuned teacher folder (finetune_teacher.py).")

    g = p.add_argument_group("distillation")
    g.add_argument("--stage", choices=["intermediate", "prediction"], default=None,
                   help="Which stage to run (default prediction; --intermediate_distill selects intermediate).")
    g.add_argument("--intermediate_distill", action="store_true", help="PaddleNLP's flag for --stage intermediate.")
    g.add_argument("--layer_map", default="uniform",
                   help="Teacher layer of each student layer: uniform (g(m) = m*N/M), top, bottom, or a list "
                        "such as 3,6,9,12 (1-based teacher layers).")
    g.add_argument("--projection", choices=distill.PROJECTION_MODES, default=None,
                   help="Intermediate stage: when student states go through the student's projection W_h "
                        "(its per-layer fit_denses when its folder has them, as PaddleNLP's v2 general TinyBERT; "
                        "else its one fit_dense) before the MSE with the teacher's. always (the default for "
                        "--model_type tinybert, as the original TinyBERT and PaddleNLP): also when student and "
                        "teacher are equally wide; when_narrower: only when the student is narrower, equal widths "
                        "are compared directly (this project's behaviour before). bert and ernie students have no "
                        "fit_dense: when_narrower only; narrower than the teacher, they are projected by a W_h the "
                        "distillation trains and saves beside the student (distill_projection.pdparams).")
    g.add_argument("--emb_weight", type=float, default=1.0, help="Weight of L_embd (intermediate stage).")
    g.add_argument("--hidden_weight", type=float, default=1.0, help="Weight of sum L_hidn (intermediate stage).")
    g.add_argument("--attn_weight", type=float, default=1.0, help="Weight of sum L_attn (intermediate stage).")
    g.add_argument("--teacher_runtime", choices=distill.TEACHER_RUNTIMES, default=distill.DEFAULT_TEACHER_RUNTIME,
                   help="How the frozen teacher runs in the intermediate stage (the same states from each): eager "
                        "Paddle; static, one paddle.jit.to_static program for every padded length; or inference, "
                        "a Paddle Inference predictor with oneDNN (CPU), its copy of the teacher exported at the "
                        "start of the run.")
    g.add_argument("--T", type=float, default=1.0, help="Temperature of L_pred (prediction stage).")
    g.add_argument("--alpha", type=float, default=0.0,
                   help="Weight of the hard-label loss added to L_pred (prediction stage; 0 = pure distillation).")
    g.add_argument("--pred_weight", type=float, default=1.0,
                   help="Weight of L_pred (prediction stage). --pred_weight 0 --alpha 1 fine-tunes the student on "
                        "the labels only (the paper's 'w/o Pred' ablation).")
    g.add_argument("--cache_teacher_logits", action="store_true",
                   help="Prediction stage: run the teacher over the training set once and reuse its logits "
                        "every epoch (same losses, about a third less compute per step).")
    g.add_argument("--max_seq_length", type=int, default=128)
    g.add_argument("--use_aug", action="store_true",
                   help="PaddleNLP's flag: train on train_aug.tsv beside the task's train.tsv "
                        "(data_augmentation.py's output); same as --train_file PATH/train_aug.tsv.")

    cli.add_data_args(p, splits=("train", "dev"))
    cli.add_training_args(p)
    cli.add_device_args(p)
    p.set_defaults(learning_rate=5e-5, group_by_length=True)  # length-grouped batches: see trainer.py
    args = p.parse_args(argv)

    if args.intermediate_distill and args.stage == "prediction":
        raise errors.UserError("--intermediate_distill and --stage prediction contradict each other")
    args.stage = "intermediate" if args.intermediate_distill else (args.stage or "prediction")
    if not (math.isfinite(args.T) and args.T > 0):
        raise errors.UserError(f"--T must be a positive number (the temperature of L_pred), got {args.T}")
    for flag in ("emb_weight", "hidden_weight", "attn_weight", "alpha", "pred_weight"):
        if not (math.isfinite(getattr(args, flag)) and getattr(args, flag) >= 0):
            raise errors.UserError(f"--{flag} must be a number >= 0, got {getattr(args, flag)}")
    if args.stage == "intermediate" and not (args.emb_weight or args.hidden_weight or args.attn_weight):
        raise errors.UserError("--emb_weight, --hidden_weight and --attn_weight are all 0: the intermediate stage "
                               "has nothing to distil; give one of them a weight > 0")
    if args.stage == "prediction" and not args.pred_weight and not args.alpha:
        raise errors.UserError("--pred_weight 0 and --alpha 0 leave the prediction stage no loss: give one of "
                               "them a weight > 0")
    if not args.model_name_or_path and not args.student_config:
        raise errors.UserError("no student: give --model_name_or_path (a TinyBERT folder, or the intermediate "
                            "stage's OUTPUT_DIR/last) or --student_config")
    if args.model_name_or_path and args.student_config:
        raise errors.UserError("give either --model_name_or_path or --student_config, not both")
    if args.projection == "always" and args.model_type in ("bert", "ernie"):
        raise errors.UserError("--projection always needs a student with fit_dense (--model_type tinybert); "
                               f"{args.model_type} students are projected only when narrower than the teacher")
    args.projection = args.projection or ("always" if args.model_type == "tinybert" else "when_narrower")
    if args.init_from_teacher and not args.student_config:
        raise errors.UserError("--init_from_teacher builds a new student: it needs --student_config")
    return args


def aug_train_file(args: argparse.Namespace) -> str:
    """--use_aug: the augmented copy of the task's training file (train_aug.tsv beside GLUE's train.tsv)."""
    if args.train_file:
        raise errors.UserError("--use_aug and --train_file both name the training file; give one")
    if not tasks.is_task(args.task_name):
        raise errors.UserError("--use_aug needs a GLUE or CLUE --task_name; for other data give --train_file")
    spec = tasks.get_task(args.task_name)
    path = outputs.augmented_path(tasks.resolve_task_file(spec, "train", args.data_dir, args.glue_dir))
    outputs.require_complete(path)
    if not path.is_file():
        raise errors.DataError(path, None, "file not found (--use_aug; write it with data_augmentation.py)")
    return str(path)


# ------------------------------------------------------------------------------------------ main

def log(msg: str) -> None:
    if trainer.is_main_process():
        print(msg, flush=True)


def check_paths_and_models(args: argparse.Namespace) -> None:
    """What can be checked in a second, before data and models load: no output is an input, and the
    length and layer map fit the teacher's and student's configs."""
    teacher_dir = checkpoints.resolve_model_dir(args.teacher_path)
    student_dir = checkpoints.resolve_model_dir(args.model_name_or_path) if args.model_name_or_path else None
    checkpoints.check_not_an_input(args.output_dir, "--output_dir", {
        "--teacher_path": teacher_dir, "--model_name_or_path": student_dir, "--student_config": args.student_config,
        "--train_file": args.train_file, "--dev_file": args.dev_file})
    teacher = modeling.read_config(teacher_dir)
    student = (modeling.read_config(student_dir) if student_dir is not None
               else distill.student_config(args.student_config, teacher,
                                           modeling.model_class(args.model_type, "classification").config_class))
    for who, config in (("teacher", teacher), ("student", student)):
        cli.check_max_seq_length(args.max_seq_length, config.max_position_embeddings, f"the {who}'s", minimum=3)
    layer_mapping.build_layer_map(student.num_hidden_layers, teacher.num_hidden_layers, args.layer_map)


@cli.run_main
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.use_aug:
        args.train_file = aug_train_file(args)
    check_paths_and_models(args)
    config = cli.start_training(args, "task_distill.py")
    spec, data = tasks.load_task_data(cli.data_config(args), splits=("train", "dev"))

    tokenizer = BertTokenizer.from_pretrained(checkpoints.resolve_model_dir(args.teacher_path))
    teacher = distill.load_teacher(args.teacher_path, args.teacher_model_type, spec)
    trainer.set_seed(args.seed)  # a random or partly random student is the same on every run and process
    student = distill.build_student(args.model_type, spec, teacher, tokenizer, args.model_name_or_path,
                                    args.student_config)
    M, N = student.config.num_hidden_layers, teacher.config.num_hidden_layers
    layer_map = layer_mapping.build_layer_map(M, N, args.layer_map)
    if args.init_from_teacher:
        distill.init_student_from_teacher(student, teacher, layer_map)
    log(f"{args.stage} stage on {spec.name}: teacher {N} layers x {teacher.config.hidden_size} "
        f"({modeling.count_parameters(teacher):,} parameters), student {M} layers x {student.config.hidden_size} "
        f"({modeling.count_parameters(student):,} parameters)")

    collate = lambda items: features.collate(items, tokenizer.pad_token_id)  # noqa: E731
    train_data = features.encode_examples(tokenizer, data["train"], args.max_seq_length, spec)
    info = {"stage": args.stage, "task": spec.name, "teacher": str(args.teacher_path), "layer_map": layer_map}
    save_model = distill.make_save_model(tokenizer, info)

    if args.stage == "intermediate":
        if args.cache_teacher_logits:
            log("note: --cache_teacher_logits applies to the prediction stage; the intermediate stage needs "
                "the teacher's hidden states, which are computed per batch")
        weights = {"emb": args.emb_weight, "hidden": args.hidden_weight, "attn": args.attn_weight}
        if weights["attn"] and student.config.num_attention_heads != teacher.config.num_attention_heads:
            raise errors.UserError(f"attention distillation needs as many heads in the student "
                                   f"({student.config.num_attention_heads}) as in the teacher "
                                   f"({teacher.config.num_attention_heads}); change the student or --attn_weight 0")
        depth = distill.teacher_depth(*distill.needed_states(layer_map, weights))
        log(layer_mapping.describe_layer_map(layer_map) + f"; teacher runs {depth} of {N} layers")
        log("the intermediate stage trains no classifier, so no dev metric can pick a best model: only the "
            "resumable last/ is kept, and the prediction stage starts from it")
        projection = distill.fit_projection(student, teacher, args.projection, args.model_name_or_path)
        log(f"--projection {args.projection}: {distill.describe_projection(projection)}")
        save_model = distill.make_save_model(tokenizer, info, projection)  # with a DistillProjection beside
        log(f"--teacher_runtime {args.teacher_runtime}")
        loss_fn = distill.intermediate_loss_fn(teacher, layer_map, projection, weights, args.teacher_runtime)
        summary = trainer.train(student, train_data, loss_fn, config, save_model=save_model,
                                parameters=distill.trainable_parameters(student, "intermediate", projection),
                                collate_fn=collate)
        log(f"next: the prediction stage with --model_name_or_path {Path(args.output_dir) / trainer.LAST_DIR}")
        return summary

    info["temperature"], info["alpha"], info["pred_weight"] = args.T, args.alpha, args.pred_weight
    dev_sets = {split: features.encode_examples(tokenizer, data[split], args.max_seq_length, spec)
                for split in tasks.dev_splits(data)}
    evaluate = evaluation.task_evaluator(spec, dev_sets, args.batch_size, tokenizer.pad_token_id)
    teacher_metrics = evaluate(teacher)
    log("teacher on dev: " + ", ".join(f"{k} {v:.4f}" for k, v in teacher_metrics.items()))
    if args.cache_teacher_logits:  # only for the examples this run's steps will use
        used = trainer.items_used(train_data, config)
        logits = evaluation.predict_logits(teacher, distill.Subset(train_data, used), args.batch_size,
                                           tokenizer.pad_token_id, desc="teacher logits (--cache_teacher_logits)")
        train_data = distill.WithTeacherLogits(train_data, logits, used)
    loss_fn = distill.prediction_loss_fn(teacher, args.T, spec.is_regression, args.alpha, args.pred_weight)
    summary = trainer.train(student, train_data, loss_fn, config, evaluate=evaluate, save_model=save_model,
                            parameters=distill.trainable_parameters(student, "prediction", None), collate_fn=collate,
                            reference_metrics=teacher_metrics)
    summary["teacher_metrics"] = teacher_metrics
    return summary


if __name__ == "__main__":
    main()
