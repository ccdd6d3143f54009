"""Fine-tune a BERT teacher on a GLUE task (or your own data) before distilling it into TinyBERT.

    python finetune_teacher.py --model_type bert --model_name_or_path MODEL_DIR --task_name SST-2 \\
        --glue_dir GLUE_DIR --max_seq_length 128 --batch_size 32 --learning_rate 2e-5 \\
        --num_train_epochs 3 --logging_steps 1 --save_steps 500 --output_dir OUT_DIR --device cpu

Several processes (devices): python -m paddle.distributed.launch --nproc_per_node 2 finetune_teacher.py ...
OUT_DIR/best_model (best dev score: model in PaddleNLP layout, tokenizer files, labels in the configs) is the
teacher for task_distill.py; OUT_DIR/last continues with --resume.
"""
from tinybert import cli

import argparse
import functools
from pathlib import Path
from typing import Any

import paddle
import paddle.nn.functional as F

from tinybert import settings
from tinybert.device import DeviceConfig
from tinybert.models import checkpoints
from tinybert.training import evaluation
from tinybert.data import features
from tinybert.models import modeling
from tinybert.data import tasks
from tinybert.training import trainer
from tinybert.training.config import TrainConfig
from tinybert.data.tokenization import BertTokenizer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--model_type", default="bert", choices=["bert", "tinybert", "ernie"],
                        help="Architecture of the model in --model_name_or_path.")
    parser.add_argument("--model_name_or_path", required=True,
                        help="Model folder (PaddleNLP layout; convert Hugging Face folders with "
                             "convert_checkpoint.py) or a name in PaddleNLP's model cache.")
    settings.add_flags(parser, features.EncodeConfig)
    settings.add_flags(parser, tasks.DataConfig, skip=("test_file",))
    settings.add_flags(parser.add_argument_group("training"), TrainConfig)
    settings.add_flags(parser, DeviceConfig)
    return parser.parse_args(argv)


def sequence_classification_loss(model: paddle.nn.Layer, batch: dict[str, paddle.Tensor]
                                 ) -> tuple[paddle.Tensor, dict[str, float]]:
    """Cross-entropy on the label ids; mean squared error on the score for regression (STS-B)."""
    logits = model(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                   attention_mask=batch["attention_mask"]).logits
    if logits.shape[-1] == 1:
        return F.mse_loss(logits[:, 0], batch["label"].astype(logits.dtype)), {}
    return F.cross_entropy(logits, batch["label"]), {}


def load_classifier(model_type: str, model_dir: Path, config: modeling.BertConfig,
                    spec: tasks.TaskSpec) -> modeling.PretrainedBert:
    """The model (folder and config read) with a classification head for the task's labels. A checkpoint
    that already has a head (or names its labels) must number them as the task does: otherwise its head
    would be read as the wrong classes. A bare encoder's placeholder labels (LABEL_0, ...) mean nothing and
    are replaced."""
    label2id = config.label2id
    named = bool(label2id) and any(not label.startswith("LABEL_") for label in label2id)
    if checkpoints.has_classifier(model_dir) or named:
        tasks.check_label_order(spec, label2id)
    head = {"num_labels": 1} if spec.is_regression else {"label2id": spec.label2id}
    return modeling.model_class(model_type, "classification").from_pretrained(model_dir, config=config, **head)


def save_checkpoint(tokenizer: BertTokenizer, model: modeling.PretrainedBert, folder: Path) -> None:
    """A folder PaddleNLP and our scripts load: weights and configs (with the labels), tokenizer files."""
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@cli.run_main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    config = settings.from_args(TrainConfig, args, run_args=settings.plain_values(args))
    data_config = settings.from_args(tasks.DataConfig, args)
    model_dir = checkpoints.resolve_model_dir(args.model_name_or_path)
    model_config = modeling.read_config(model_dir, modeling.model_class(args.model_type, "classification").config_class)
    cli.check_max_seq_length(args.max_seq_length, model_config.max_position_embeddings, minimum=3)
    config = cli.start_training(config, settings.from_args(DeviceConfig, args), "finetune_teacher.py", inputs={
        "--model_name_or_path": model_dir, "--train_file": data_config.train_file,
        "--dev_file": data_config.dev_file}, data=data_config)
    trainer.set_seed(config.seed)  # the new classifier head's initialisation is part of the run

    spec, data = tasks.load_task_data(data_config, splits=("train", "dev"))
    data["train"] = tasks.sample_rows(data["train"], config.max_train_examples, config.seed)
    tokenizer = BertTokenizer.from_pretrained(model_dir)
    model = load_classifier(args.model_type, model_dir, model_config, spec)

    encode = functools.partial(features.encode_examples, tokenizer, max_seq_length=args.max_seq_length, spec=spec)
    train_set = encode(data["train"])
    dev_sets = {split: encode(data[split]) for split in tasks.dev_splits(data)}
    collate = functools.partial(features.collate, pad_token_id=tokenizer.pad_token_id)
    if trainer.is_main_process():
        sizes = ", ".join(f"{split} {len(d)}" for split, d in dev_sets.items())
        print(f"{spec.name}: train {len(train_set)}, {sizes}; {modeling.count_parameters(model):,} parameters")

    return trainer.train(model, train_set, sequence_classification_loss, config,
                         evaluate=evaluation.task_evaluator(spec, dev_sets, config.batch_size, tokenizer.pad_token_id),
                         save_model=functools.partial(save_checkpoint, tokenizer), collate_fn=collate)


if __name__ == "__main__":
    main()
