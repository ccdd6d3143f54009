"""Convert a Hugging Face BERT folder into this project's (PaddleNLP's) checkpoint layout.

    python convert_checkpoint.py --from_hf HF_DIR --output_dir OUT_DIR [--safe_serialization]

Reads config.json and model.safetensors (or pytorch_model.bin when torch is installed), renames every
weight to PaddleNLP's name, transposes Linear weights ([out, in] in PyTorch, [in, out] in Paddle) and
writes model_state.pdparams (or model.safetensors), model_config.json, config.json, vocab.txt and
tokenizer_config.json. A masked-LM head (cls.predictions.*) and a sequence classifier are kept.
"""
from tinybert import cli

import argparse
import re
from pathlib import Path

import numpy as np

from tinybert.models import checkpoints
from tinybert import errors
from tinybert.models import modeling
from tinybert.data.tokenization import BertTokenizer


# Hugging Face name (after the 'bert.' prefix) -> (our name, transpose?). {i} is the layer index.
RENAMES = [
    (r"embeddings\.word_embeddings\.weight", "embeddings.word_embeddings.weight", False),
    (r"embeddings\.position_embeddings\.weight", "embeddings.position_embeddings.weight", False),
    (r"embeddings\.token_type_embeddings\.weight", "embeddings.token_type_embeddings.weight", False),
    (r"embeddings\.LayerNorm\.(weight|bias)", "embeddings.layer_norm.{0}", False),
    (r"encoder\.layer\.(\d+)\.attention\.self\.query\.(weight|bias)", "encoder.layers.{0}.self_attn.q_proj.{1}", True),
    (r"encoder\.layer\.(\d+)\.attention\.self\.key\.(weight|bias)", "encoder.layers.{0}.self_attn.k_proj.{1}", True),
    (r"encoder\.layer\.(\d+)\.attention\.self\.value\.(weight|bias)", "encoder.layers.{0}.self_attn.v_proj.{1}", True),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", "encoder.layers.{0}.self_attn.out_proj.{1}",
     True),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias)", "encoder.layers.{0}.norm1.{1}", False),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)", "encoder.layers.{0}.linear1.{1}", True),
    (r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)", "encoder.layers.{0}.linear2.{1}", True),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias)", "encoder.layers.{0}.norm2.{1}", False),
    (r"pooler\.dense\.(weight|bias)", "pooler.dense.{0}", True),
]
HEAD_RENAMES = [
    (r"cls\.predictions\.transform\.dense\.(weight|bias)", "cls.predictions.transform.{0}", True),
    (r"cls\.predictions\.transform\.LayerNorm\.(weight|bias)", "cls.predictions.layer_norm.{0}", False),
    (r"cls\.predictions\.bias", "cls.predictions.decoder_bias", False),
    (r"classifier\.(weight|bias)", "classifier.{0}", True),
]
# Kept elsewhere or not used by any of our models: the tied decoder matrix (= word embeddings), its bias
# alias, position_ids buffers, next-sentence prediction.
DROPPED = re.compile(r"(cls\.predictions\.decoder\.(weight|bias)|.*position_ids|cls\.seq_relationship\..*)$")


def read_hf_weights(hf_dir: Path) -> dict[str, np.ndarray]:
    if (hf_dir / "model.safetensors").is_file():
        return checkpoints.load_state(hf_dir / "model.safetensors")
    if (hf_dir / "pytorch_model.bin").is_file():
        try:
            import torch
        except ImportError:
            raise errors.UserError(f"{hf_dir} holds only pytorch_model.bin, which needs torch to read: install torch, "
                                f"or give a folder with model.safetensors") from None
        state = torch.load(str(hf_dir / "pytorch_model.bin"), map_location="cpu", weights_only=True)
        return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in state.items()}
    raise errors.UserError(f"{hf_dir}: no model.safetensors or pytorch_model.bin found")


def rename_hf_state(hf_state: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
    """HF names -> ours (encoder keys under 'bert.'), Linear weights transposed. Returns (state, unused)."""
    out, unused = {}, []
    for name, value in hf_state.items():
        bare = name[len("bert."):] if name.startswith("bert.") else name
        for pattern, target, transpose in RENAMES + HEAD_RENAMES:
            m = re.fullmatch(pattern, bare)
            if m:
                new = target.format(*m.groups())
                if (pattern, target, transpose) in RENAMES:
                    new = "bert." + new
                if transpose and new.endswith(".weight"):
                    value = value.T
                out[new] = np.ascontiguousarray(value, dtype=np.float32)
                break
        else:
            if not DROPPED.match(bare):
                unused.append(name)
    return out, unused


def read_hf_config(hf_dir: Path) -> modeling.BertConfig:
    path = hf_dir / "config.json"
    if not path.is_file():
        raise errors.UserError(f"{hf_dir}: no config.json (is this a Hugging Face model folder?)")
    d = checkpoints.read_json(path, "model config")
    if not isinstance(d, dict):
        raise errors.DataError(path, None, "not a model config (a JSON object of config fields)")
    if d.get("model_type", "bert") != "bert":
        raise errors.UserError(f"{path}: model_type {d['model_type']!r} is not BERT")
    if d.get("position_embedding_type", "absolute") != "absolute":
        raise errors.UserError(f"{path}: position_embedding_type {d['position_embedding_type']!r} is not supported")
    d.setdefault("type_vocab_size", 2)  # HF's default (PaddleNLP's is 16): the checkpoint's own value wins
    d.setdefault("layer_norm_eps", 1e-12)
    return modeling.BertConfig.from_dict(d)


def convert_hf_checkpoint(hf_dir: str | Path, output_dir: str | Path, safe_serialization: bool = False,
                          overwrite: bool = False) -> Path:
    hf_dir, output_dir = Path(hf_dir), Path(output_dir)
    if not hf_dir.is_dir():
        raise errors.UserError(f"{hf_dir}: not a folder")
    checkpoints.check_not_an_input(output_dir, "--output_dir", {"--from_hf": hf_dir})
    checkpoints.check_output_folder(output_dir, "--output_dir", overwrite, "--overwrite_output_dir")
    config = read_hf_config(hf_dir)
    state, unused = rename_hf_state(read_hf_weights(hf_dir))

    has_classifier = "classifier.weight" in state
    has_mlm = any(k.startswith("cls.predictions.") for k in state)
    if has_classifier:
        config.num_labels = state["classifier.weight"].shape[1]
        cls = modeling.BertForSequenceClassification
    else:  # HF's masked-LM models have no pooler: it is initialised fresh, and reported
        cls = modeling.BertForMaskedLM if has_mlm else modeling.BertModel
    model = cls(config)
    model.load_checkpoint_state(state, source=str(hf_dir))
    if unused:
        modeling._info(f"not converted (no counterpart here): {', '.join(unused[:8])}"
                       + (f" and {len(unused) - 8} more" if len(unused) > 8 else ""))
    tokenizer = BertTokenizer.from_pretrained(hf_dir) if (hf_dir / "vocab.txt").is_file() else None
    if tokenizer is None:
        modeling._info(f"{hf_dir} has no vocab.txt: no tokenizer files written")

    def write(folder: Path) -> None:  # a failure leaves no half-written folder behind
        model.save_pretrained(folder, safe_serialization=safe_serialization)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)
        checkpoints.mark_output(folder, "convert_checkpoint.py")

    checkpoints.atomic_dir(output_dir, write)
    return output_dir


@cli.run_main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=cli.HelpFormatter)
    parser.add_argument("--from_hf", required=True, help="Hugging Face BERT folder (config.json + weights).")
    parser.add_argument("--output_dir", required=True, help="Folder to write the converted checkpoint to.")
    parser.add_argument("--safe_serialization", action="store_true",
                        help="Write model.safetensors instead of model_state.pdparams (a pickle).")
    parser.add_argument("--overwrite_output_dir", "--overwrite", dest="overwrite_output_dir", action="store_true",
                        help="Replace files in a non-empty OUTPUT_DIR.")
    args = parser.parse_args(argv)
    out = convert_hf_checkpoint(args.from_hf, args.output_dir, args.safe_serialization, args.overwrite_output_dir)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
