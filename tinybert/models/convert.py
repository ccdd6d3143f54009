"""Hugging Face BERT folders into this project's (PaddleNLP's) checkpoint layout: every weight renamed to
PaddleNLP's name, Linear weights transposed ([out, in] in PyTorch, [in, out] in Paddle); config.json,
vocab.txt and tokenizer_config.json carried over. A masked-LM head (cls.predictions.*) and a sequence
classifier are kept. Used by convert_checkpoint.py and by hub names (tinybert/models/hub.py), which convert
on first use.

Weights: model.safetensors, else pytorch_model.bin read without torch (safe_pickle.load_torch).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tinybert import errors
from tinybert.data.tokenization import BertTokenizer
from tinybert.models import checkpoints, modeling

PYTORCH_WEIGHTS = "pytorch_model.bin"

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
    """model.safetensors when the folder has it, else pytorch_model.bin."""
    if (hf_dir / checkpoints.WEIGHTS_SAFETENSORS).is_file():
        return checkpoints.load_state(hf_dir / checkpoints.WEIGHTS_SAFETENSORS)
    if (hf_dir / PYTORCH_WEIGHTS).is_file():  # read without torch, running no code (safe_pickle.load_torch)
        return checkpoints.load_state(hf_dir / PYTORCH_WEIGHTS)
    raise errors.UserError(f"{hf_dir}: no model.safetensors or pytorch_model.bin found")


def rename_hf_state(hf_state: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
    """HF names -> ours (encoder keys under 'bert.'), Linear weights transposed. Returns (state, unused)."""
    out, unused = {}, []
    for name, value in hf_state.items():
        bare = name[len("bert."):] if name.startswith("bert.") else name
        if "LayerNorm." in bare:  # older checkpoints (bert-base-uncased's own) name LayerNorm's gamma and beta
            bare = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", bare))
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
    """Write OUTPUT_DIR, this project's (PaddleNLP's) layout of the Hugging Face BERT folder HF_DIR."""
    hf_dir, output_dir = Path(hf_dir), Path(output_dir)
    if not hf_dir.is_dir():
        raise errors.UserError(f"{hf_dir}: not a folder")
    checkpoints.check_not_an_input(output_dir, "--output_dir", {"--from_hf": hf_dir})
    with checkpoints.writing(output_dir, "--output_dir"):  # one conversion into a folder at a time
        checkpoints.recover_dir(output_dir)  # an earlier conversion a kill interrupted
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
            checkpoints.mark_output(folder, "convert_checkpoint.py")  # what replaces it later checks this

        checkpoints.atomic_dir(output_dir, write)
    return output_dir


# ----------------------------------------------------------------------------------------------
# Hugging Face names: downloaded with huggingface_hub, converted once, the result cached beside the download

HUB_FILES = ("vocab.txt", "tokenizer_config.json")  # besides config.json and the weights; optional
CONVERTED = "tinybert"  # HF cache: models--ORG--NAME/snapshots/COMMIT (theirs), models--ORG--NAME/tinybert/COMMIT


def is_hub_name(name: str) -> bool:
    """ORG/NAME, as Hugging Face names a repository (a local folder of that name wins: callers look first)."""
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", name) is not None and ".." not in name


def from_hub(repo_id: str) -> Path:
    """This project's folder of a Hugging Face BERT repository: downloaded (model.safetensors when the
    repository has it, else pytorch_model.bin) and converted on first use; later uses, offline too, find it."""
    from tinybert import download

    config = download.hub_file(repo_id, "config.json")
    if config is None:
        if download.hub_is_offline():
            raise download.hub_offline_error(repo_id, "config.json")
        raise errors.UserError(f"{repo_id}: the Hugging Face repository has no config.json "
                               "(not a model for this project)")
    snapshot = config.parent
    converted = snapshot.parent.parent / CONVERTED / snapshot.name
    if (converted / checkpoints.OUTPUT_MARK).is_file():
        return converted
    with download.entry_lock(converted):  # one process converts, the others wait and find it done
        if (converted / checkpoints.OUTPUT_MARK).is_file():
            return converted
        weights = (download.hub_file(repo_id, checkpoints.WEIGHTS_SAFETENSORS)
                   or download.hub_file(repo_id, PYTORCH_WEIGHTS))
        if weights is None:
            if download.hub_is_offline():
                raise download.hub_offline_error(repo_id, f"{checkpoints.WEIGHTS_SAFETENSORS} or {PYTORCH_WEIGHTS}")
            raise errors.UserError(f"{repo_id}: the repository has neither {checkpoints.WEIGHTS_SAFETENSORS} "
                                   f"nor {PYTORCH_WEIGHTS}")
        for name in HUB_FILES:
            download.hub_file(repo_id, name)
        modeling._info(f"converting {repo_id} into {converted}")
        convert_hf_checkpoint(snapshot, converted, safe_serialization=True, overwrite=True)
    return converted
