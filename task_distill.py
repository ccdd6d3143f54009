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
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tinybert.models import checkpoints
from tinybert.augmentation import outputs
from tinybert.distillation import distill
from tinybert.distillation.config import DistillConfig, DistillSetup
from tinybert import errors
from tinybert import settings
from tinybert.device import DeviceConfig
from tinybert.training import evaluation
from tinybert.data import features
import layer_mapping
from tinybert.models import modeling
from tinybert.data import tasks
from tinybert.training import trainer
from tinybert.training.config import TrainConfig
from tinybert.data.tokenization import BertTokenizer

# Length-grouped batches (see trainer.py) and the TinyBERT recipe's learning rate.
TRAIN_DEFAULTS = {"learning_rate": 5e-5, "group_by_length": True}


# ------------------------------------------------------------------------------------------ arguments

@dataclass(frozen=True)
class Args:
    """The command line as the library takes it, each part checked when built."""
    distill: DistillConfig
    train: TrainConfig
    data: tasks.DataConfig
    devices: DeviceConfig


def parse_args(argv: Sequence[str] | None = None) -> Args:
    p = argparse.ArgumentParser(description="TinyBERT task distillation: intermediate and prediction stages.",
                                formatter_class=cli.HelpFormatter)
    settings.add_flags(p, DistillConfig)
    settings.add_flags(p, tasks.DataConfig, skip=("test_file",))
    settings.add_flags(p.add_argument_group("training"), TrainConfig, defaults=TRAIN_DEFAULTS)
    settings.add_flags(p, DeviceConfig)
    args = p.parse_args(argv)

    config = settings.from_args(DistillConfig, args)
    data = settings.from_args(tasks.DataConfig, args)
    if config.use_aug:
        data = dataclasses.replace(data, train_file=aug_train_file(data))
    # The command line as resolved: the stage and projection chosen, the training file read.
    run_args = {**settings.plain_values(args), "stage": config.stage, "projection": config.projection,
                "train_file": data.train_file}
    train = settings.from_args(TrainConfig, args, run_args=run_args)
    return Args(config, train, data, settings.from_args(DeviceConfig, args))


def aug_train_file(data: tasks.DataConfig) -> str:
    """--use_aug: the augmented copy of the task's training file (train_aug.tsv beside GLUE's train.tsv)."""
    if data.train_file:
        raise errors.UserError("--use_aug and --train_file both name the training file; give one")
    if not tasks.is_task(data.task_name):
        raise errors.UserError("--use_aug needs a GLUE or CLUE --task_name; for other data give --train_file")
    spec = tasks.get_task(data.task_name)
    path = outputs.augmented_path(tasks.resolve_task_file(spec, "train", data.data_dir, data.glue_dir))
    outputs.require_complete(path)
    if not path.is_file():
        raise errors.DataError(path, None, "file not found (--use_aug; write it with data_augmentation.py)")
    return str(path)


def resolve_setup(config: DistillConfig) -> DistillSetup:
    """Each model folder found and each config read once, before data and models load: the length, the
    heads and the layer map checked against them."""
    teacher_dir = checkpoints.resolve_model_dir(config.teacher_path)
    teacher = modeling.read_config(teacher_dir, modeling.model_class(config.teacher_model_type,
                                                                     "classification").config_class)
    student_class = modeling.model_class(config.model_type, "classification").config_class
    if config.model_name_or_path:
        student_dir = checkpoints.resolve_model_dir(config.model_name_or_path)
        student = modeling.read_config(student_dir, student_class)
    else:
        student_dir, student = None, distill.student_config(config.student_config, teacher, student_class)
    for who, c in (("teacher", teacher), ("student", student)):
        cli.check_max_seq_length(config.max_seq_length, c.max_position_embeddings, f"the {who}'s", minimum=3)
    layer_map = layer_mapping.build_layer_map(student.num_hidden_layers, teacher.num_hidden_layers, config.layer_map)
    config.check_models(teacher, student)
    return DistillSetup(config.teacher_model_type, teacher_dir, teacher, config.model_type, student_dir, student,
                        tuple(layer_map), config.init_from_teacher)


# ------------------------------------------------------------------------------------------ main

def log(msg: str) -> None:
    if trainer.is_main_process():
        print(msg, flush=True)


@cli.run_main
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    config, train_config = args.distill, args.train
    setup = resolve_setup(config)
    train_config = cli.start_training(train_config, args.devices, "task_distill.py", inputs={
        "--teacher_path": setup.teacher_dir, "--model_name_or_path": setup.student_dir,
        "--student_config": config.student_config, "--train_file": args.data.train_file,
        "--dev_file": args.data.dev_file}, data=args.data)
    spec, data = tasks.load_task_data(args.data, splits=("train", "dev"))
    data["train"] = tasks.sample_rows(data["train"], train_config.max_train_examples, train_config.seed)

    tokenizer = BertTokenizer.from_pretrained(setup.teacher_dir)
    teacher, student = distill.load_models(setup, spec, tokenizer, train_config.seed)
    layer_map = list(setup.layer_map)
    M, N = student.config.num_hidden_layers, teacher.config.num_hidden_layers
    log(f"{config.stage} stage on {spec.name}: teacher {N} layers x {teacher.config.hidden_size} "
        f"({modeling.count_parameters(teacher):,} parameters), student {M} layers x {student.config.hidden_size} "
        f"({modeling.count_parameters(student):,} parameters)")

    collate = lambda items: features.collate(items, tokenizer.pad_token_id)  # noqa: E731
    train_data = features.encode_examples(tokenizer, data["train"], config.max_seq_length, spec)
    info = {"stage": config.stage, "task": spec.name, "teacher": str(config.teacher_path), "layer_map": layer_map}
    save_model = distill.make_save_model(tokenizer, info)

    if config.stage == "intermediate":
        if config.cache_teacher_logits:
            log("note: --cache_teacher_logits applies to the prediction stage; the intermediate stage needs "
                "the teacher's hidden states, which are computed per batch")
        weights = config.weights
        depth = distill.teacher_depth(*distill.needed_states(layer_map, weights))
        log(layer_mapping.describe_layer_map(layer_map) + f"; teacher runs {depth} of {N} layers")
        log("the intermediate stage trains no classifier, so no dev metric can pick a best model: only the "
            "resumable last/ is kept, and the prediction stage starts from it")
        projection = distill.fit_projection(student, teacher, config.projection, setup.student_dir)
        log(f"--projection {config.projection}: {distill.describe_projection(projection)}")
        save_model = distill.make_save_model(tokenizer, info, projection)  # with a DistillProjection beside
        log(f"--teacher_runtime {config.teacher_runtime}")
        loss_fn = distill.intermediate_loss_fn(teacher, layer_map, projection, weights, config.teacher_runtime)
        summary = trainer.train(student, train_data, loss_fn, train_config, save_model=save_model,
                                parameters=distill.trainable_parameters(student, "intermediate", projection),
                                collate_fn=collate)
        log(f"next: the prediction stage with --model_name_or_path {Path(train_config.output_dir) / trainer.LAST_DIR}")
        return summary

    info["temperature"], info["alpha"], info["pred_weight"] = config.T, config.alpha, config.pred_weight
    dev_sets = {split: features.encode_examples(tokenizer, data[split], config.max_seq_length, spec)
                for split in tasks.dev_splits(data)}
    evaluate = evaluation.task_evaluator(spec, dev_sets, train_config.batch_size, tokenizer.pad_token_id)
    teacher_metrics = evaluate(teacher)
    log("teacher on dev: " + ", ".join(f"{k} {v:.4f}" for k, v in teacher_metrics.items()))
    if config.cache_teacher_logits:  # only for the examples this run's steps will use
        used = features.items_used(train_data, train_config, trainer.world_size())
        logits = evaluation.predict_logits(teacher, distill.Subset(train_data, used), train_config.batch_size,
                                           tokenizer.pad_token_id, desc="teacher logits (--cache_teacher_logits)")
        train_data = distill.WithTeacherLogits(train_data, logits, used)
    loss_fn = distill.prediction_loss_fn(teacher, config.T, spec.is_regression, config.alpha, config.pred_weight)
    summary = trainer.train(student, train_data, loss_fn, train_config, evaluate=evaluate, save_model=save_model,
                            parameters=distill.trainable_parameters(student, "prediction", None), collate_fn=collate,
                            reference_metrics=teacher_metrics)
    summary["teacher_metrics"] = teacher_metrics
    return summary


if __name__ == "__main__":
    main()
