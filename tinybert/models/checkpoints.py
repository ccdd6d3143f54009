"""The one module that knows a model folder, and the atomic writers every output of the project goes through.

A model folder (PaddleNLP's layout, read and written by modeling.py, the trainer and the scripts):

    model.safetensors | model_state.pdparams   weights; when both exist, WEIGHTS_ORDER says which wins
    config.json | model_config.json           the flat form, or PaddleNLP 2.x's {"init_args": ...} form
    vocab.txt, tokenizer_config.json           tokenization.py

Reading: every way a user's file can be broken (missing, truncated, not JSON, a pickle that would run
code) becomes one errors.DataError naming the file. Writing: a file is written to a temporary sibling
and renamed into place, a folder is filled as a temporary sibling and swapped in, so a crash at any
moment leaves the old version or the new one, never half of one.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from tinybert.errors import DataError, UserError, first_line, naming

WEIGHTS_SAFETENSORS = "model.safetensors"
WEIGHTS_PDPARAMS = "model_state.pdparams"
# Which weights file wins when a folder has both: safetensors, since reading it runs no pickle.
WEIGHTS_ORDER = (WEIGHTS_SAFETENSORS, WEIGHTS_PDPARAMS)
CONFIG_JSON = "config.json"             # newer PaddleNLP / Hugging Face form: flat fields
CONFIG_PADDLENLP = "model_config.json"  # PaddleNLP 2.x form: {"init_args": [...], "init_class": ...}
CONFIG_ORDER = (CONFIG_JSON, CONFIG_PADDLENLP)
TRAINING_ARGS = "training_args.json"    # the settings of the run that saved the folder (trainer.py)


# ----------------------------------------------------------------------------------------------
# Atomic writers


def _tmp_sibling(path: Path) -> Path:
    """A hidden sibling with the same suffix (numpy and paddle pick the format by it)."""
    return path.with_name(f".{path.stem}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary sibling path to write `path`'s new content to; on success it replaces `path` in one
    rename, on an exception it is removed and `path` stays as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    try:
        with naming(path, tmp):  # errors name the output, not its temporary name
            yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):  # unlink of a missing file fails on a read-only disk, hiding the real error
            tmp.unlink()


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """atomic_path, opened: text mode writes UTF-8 with "\\n" line ends on every OS."""
    kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_file(path) as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def save_paddle(obj: Any, path: str | os.PathLike) -> None:
    """paddle.save, atomically (paddle.save itself writes in place)."""
    import paddle

    with atomic_path(path) as tmp:
        paddle.save(obj, str(tmp))


def _old_sibling(d: Path) -> Path:
    return d.parent / f".{d.name}.old"


def atomic_dir(final_dir: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Fill a temporary sibling folder with `write(folder)`, then swap it in for `final_dir`.

    The old folder is moved aside and the new one renamed into place (each rename atomic); a crash
    between the two leaves '.NAME.old', which recover_dir() puts back."""
    final_dir = Path(final_dir)
    tmp, old = _tmp_sibling(final_dir), _old_sibling(final_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    if final_dir.exists():
        final_dir.rename(old)
    tmp.rename(final_dir)
    shutil.rmtree(old, ignore_errors=True)


def recover_dir(final_dir: str | os.PathLike) -> None:
    """Finish an interrupted atomic_dir: restore '.NAME.old' if NAME is missing; drop a half-written temp."""
    final_dir = Path(final_dir)
    old = _old_sibling(final_dir)
    if not final_dir.exists() and old.exists():
        old.rename(final_dir)
    shutil.rmtree(_tmp_sibling(final_dir), ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def dir_leftovers(final_dir: str | os.PathLike) -> list[Path]:
    """The temporary and set-aside siblings atomic_dir may leave behind after a crash."""
    final_dir = Path(final_dir)
    return [p for p in (_tmp_sibling(final_dir), _old_sibling(final_dir)) if p.exists()]


# ----------------------------------------------------------------------------------------------
# Finding a model folder and its files


def paddlenlp_home() -> Path:
    """PaddleNLP's cache root: $PPNLP_HOME, else ~/.paddlenlp."""
    return Path(os.environ.get("PPNLP_HOME", Path.home() / ".paddlenlp")).expanduser()


def resolve_model_dir(name_or_path: str | os.PathLike) -> Path:
    """A local folder, else PaddleNLP's model cache ($PPNLP_HOME/models/NAME). Nothing is downloaded.

    What PaddleNLP keeps there for a built-in name (bert-base-uncased, ernie-3.0-base-zh, ernie-1.0, ...):
    the weights (2.8: model_state.pdparams; older versions: the download's own name, e.g.
    ernie_3.0_base_zh.pdparams; find_weights takes either), the vocabulary (its download name, and
    vocab.txt once PaddleNLP's tokenizer has loaded it) and no model config: configs.BUILTIN_CONFIGS has it."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    cached = paddlenlp_home() / "models" / name
    if "/" not in name and os.sep not in name and cached.is_dir() and find_weights(cached):
        return cached
    raise UserError(
        f"model {name!r} not found: not a local folder, and no weights in PaddleNLP's cache at {cached} "
        f"(nothing is downloaded; pass a local folder, or convert a Hugging Face checkpoint with "
        f"convert_checkpoint.py --from_hf HF_DIR --output_dir OUT_DIR)")


def find_weights(folder: Path) -> Path | None:
    """The folder's weights file: WEIGHTS_ORDER, then PaddleNLP cache's NAME.pdparams, then a lone *.pdparams
    (an older PaddleNLP cache's download name, e.g. ernie_3.0_base_zh.pdparams or ernie_v1_chn_base.pdparams)."""
    folder = Path(folder)
    for candidate in (*WEIGHTS_ORDER, f"{folder.name}.pdparams"):
        if (folder / candidate).is_file():
            return folder / candidate
    found = sorted(folder.glob("*.pdparams"))
    return found[0] if len(found) == 1 else None


def require_weights(folder: Path) -> Path:
    weights = find_weights(folder)
    if weights is None:
        raise UserError(f"{folder}: no {WEIGHTS_SAFETENSORS} or {WEIGHTS_PDPARAMS} found")
    return weights


def read_json(path: Path, what: str = "JSON file") -> Any:
    """A JSON file, with a one-line error naming file and line when it is not valid JSON or not UTF-8."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(path, None, f"not a {what}: not UTF-8 text") from None
    except OSError as e:
        raise DataError(path, None, f"cannot read the {what}: {e.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, f"not a valid {what} ({e.msg}); re-save it or fix the JSON") from None


def config_files(folder: Path) -> list[Path]:
    """The config files a folder has, in CONFIG_ORDER (the first one is what the model is built from)."""
    return [Path(folder) / name for name in CONFIG_ORDER if (Path(folder) / name).is_file()]


def read_config_dict(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """(file, its fields) of the config that wins, or None when the folder has none."""
    files = config_files(folder)
    if not files:
        return None
    d = read_json(files[0], "model config")
    if not isinstance(d, dict):
        raise DataError(files[0], None, "not a model config (a JSON object of config fields)")
    return files[0], d


def _class_names(folder: Path) -> list[str]:
    """Every model class or type name the folder's configs record."""
    names: list[str] = []
    for path in config_files(folder):
        d = read_json(path, "model config")
        if not isinstance(d, dict):
            continue
        for key in ("model_type", "init_class", "architectures"):
            value = d.get(key) or []
            names += [value] if isinstance(value, str) else [str(v) for v in value]
        for inner in d.get("init_args") or []:
            if isinstance(inner, dict) and isinstance(inner.get("init_class"), str):
                names.append(inner["init_class"])
    return names


def model_type(folder: Path, default: str | None = "bert") -> str | None:
    """'tinybert', 'ernie' or 'bert', from the class names or model_type the saved configs record
    (config.json's model_type / architectures, model_config.json's init_class, outer and inner)."""
    text = " ".join(_class_names(folder)).lower()
    if "tinybert" in text:
        return "tinybert"
    if "ernie" in text:
        return "ernie"
    if "bert" in text:
        return "bert"
    if not config_files(folder) and Path(folder).name.lower().startswith("ernie"):
        return "ernie"  # PaddleNLP's cache of a built-in name (ernie-3.0-base-zh, ernie-1.0): no config there
    return default  # a plain BERT config (e.g. an HF folder) names no class


def training_args(folder: Path) -> dict[str, Any]:
    """The settings of the run that saved this folder ({} when it was not saved by a training run)."""
    path = Path(folder) / TRAINING_ARGS
    record = read_json(path, "training record") if path.is_file() else {}
    return record if isinstance(record, dict) else {}


def has_classifier(folder: Path) -> bool:
    """Whether the checkpoint was saved with a sequence-classification head (by its configs)."""
    return any("SequenceClassification" in name for name in _class_names(folder))


# ----------------------------------------------------------------------------------------------
# Reading weights


def load_state(path: Path) -> dict[str, np.ndarray]:
    """A weights file as {name: numpy array} of numbers, every float finite; a broken or hostile file,
    text where numbers belong, or a NaN or inf is one DataError naming the file (and the tensor)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "weights file not found" if not path.exists() else "not a file")
    if path.suffix == ".safetensors":
        state = _load_safetensors(path)
    else:
        from tinybert.models import safe_pickle

        loaded = safe_pickle.load(path, "weights file")
        if not isinstance(loaded, dict):
            raise DataError(path, None, f"not a weights file: it holds a {type(loaded).__name__}, not named arrays")
        state = {str(k): np.asarray(v) for k, v in loaded.items()}
    check_values(state, path)
    return state


# dtype kinds a weights file may hold: floats, and integers and booleans (buffers such as HF's position_ids).
_NUMBER_KINDS = "fiub"


def check_values(state: dict[str, np.ndarray], path: Path) -> None:
    """Weights are numbers, and a float is finite: a NaN or inf (a run that diverged) would otherwise
    give NaN logits and a label chosen by argmax over NaN, with no error."""
    for name, value in state.items():
        if value.dtype.kind not in _NUMBER_KINDS:
            raise DataError(path, None, f"tensor {name!r} holds {value.dtype} values ({_kind_name(value)}), "
                                        f"not numbers: this is not a usable weights file")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            bad = ~np.isfinite(value)
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(path, None, f"tensor {name!r} holds {int(bad.sum())} NaN or infinite values "
                                        f"(the first at {list(first)}: {value[first]}); the run that saved it "
                                        f"diverged or the file is damaged: use an earlier checkpoint")


def _kind_name(value: np.ndarray) -> str:
    return {"U": "text", "S": "bytes", "O": "Python objects", "c": "complex numbers"}.get(value.dtype.kind, "not numbers")


def require_float(name: str, value: np.ndarray, source: object) -> None:
    """A value loaded into a float parameter must be a float array (not integers cast silently)."""
    if value.dtype.kind != "f":
        raise DataError(source, None, f"tensor {name!r} is {value.dtype}, not a float type: "
                                      f"it cannot be the model's weight")


def _load_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for every kind of damage
        raise _safetensors_error(path, e) from None


def _safetensors_error(path: Path, e: BaseException) -> DataError:
    return DataError(path, None, f"not a readable safetensors file ({first_line(e)}); "
                                 "it is truncated or corrupt: save or copy it again")



def weight_names(path: Path) -> list[str]:
    """Names in a weights file (safetensors: from its header, without reading the arrays)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as f:
                return list(f.keys())
        except Exception as e:
            raise _safetensors_error(path, e) from None
    return list(load_state(path))


def has_mlm_head(folder: Path) -> bool:
    """Whether a checkpoint folder holds masked-LM head weights (cls.predictions.*)."""
    weights = find_weights(Path(folder))
    return weights is not None and any(k.startswith("cls.predictions.") for k in weight_names(weights))


# ----------------------------------------------------------------------------------------------
# Other checkpoint layouts: how their weight names become ours
#
# Ours are PaddleNLP 2.8's names: a base model's encoder bare (embeddings.*, encoder.*, pooler.*), a head
# model's under its encoder prefix (bert., tinybert. or ernie.), then the head's own (classifier.*, cls.*).
# Each rule turns one other layout into ours and leaves a state of any other layout as it is.

ENCODER_KEY_STARTS = ("embeddings.", "encoder.", "pooler.", "fit_dense")  # fit_dense and fit_denses
SIBLING_PREFIX = {"bert": "tinybert", "tinybert": "bert"}  # one encoder, two names; ERNIE's is only ernie.

State = dict[str, np.ndarray]


def _has_prefix(state: State, prefix: str) -> bool:
    return any(k.startswith(prefix + ".") for k in state)


def refuse_hugging_face(state: State, prefix: str, is_base_model: bool) -> State:
    """Hugging Face's names (encoder.layer.N.attention...) need transposed weights: convert_checkpoint.py."""
    if any(k.startswith(("encoder.layer.", "bert.encoder.layer.")) for k in state):
        raise UserError("these are Hugging Face weights; convert them first with "
                        "convert_checkpoint.py --from_hf HF_DIR --output_dir OUT_DIR")
    return state


def old_paddlenlp_mlm_head(state: State, prefix: str, is_base_model: bool) -> State:
    """Older PaddleNLP files name the tied matrix decoder_weight and keep the bias only as decoder_bias;
    PaddleNLP 2.8 writes decoder.weight and decoder.bias too. Ours: one bias under both names, no matrix
    (it is the word embeddings)."""
    state = {k: v for k, v in state.items() if k != "cls.predictions.decoder_weight"}
    for name, alias in (("cls.predictions.decoder_bias", "cls.predictions.decoder.bias"),
                        ("cls.predictions.decoder.bias", "cls.predictions.decoder_bias")):
        if name in state and alias not in state:
            state[alias] = state[name]
    return state


def sibling_encoder_prefix(state: State, prefix: str, is_base_model: bool) -> State:
    """A BERT head checkpoint (bert.*) into a TinyBERT model (tinybert.*), and the other way round."""
    other = SIBLING_PREFIX.get(prefix)
    if other is None or _has_prefix(state, prefix) or not _has_prefix(state, other):
        return state
    return {(prefix + k[len(other):] if k.startswith(other + ".") else k): v for k, v in state.items()}


def head_checkpoint_into_base_model(state: State, prefix: str, is_base_model: bool) -> State:
    """A head model's checkpoint (bert.embeddings.*, classifier.*) into a bare encoder: the prefix goes;
    the head's weights stay, and are reported unused."""
    if not is_base_model or not _has_prefix(state, prefix):
        return state
    return {(k[len(prefix) + 1:] if k.startswith(prefix + ".") else k): v for k, v in state.items()}


def base_checkpoint_into_head_model(state: State, prefix: str, is_base_model: bool) -> State:
    """A bare encoder's checkpoint (embeddings.*, PaddleNLP's pretrained models) into a head model: the
    encoder's weights go under the prefix; the head is then missing, and initialised fresh."""
    if is_base_model or _has_prefix(state, prefix):
        return state
    return {(f"{prefix}.{k}" if k.startswith(ENCODER_KEY_STARTS) else k): v for k, v in state.items()}


# (layout, rule), applied in this order: the prefix rules see the sibling's prefix already renamed.
KEY_LAYOUTS: tuple[tuple[str, Callable[[State, str, bool], State]], ...] = (
    ("Hugging Face (refused: convert it first)", refuse_hugging_face),
    ("older PaddleNLP masked-LM head", old_paddlenlp_mlm_head),
    ("BERT's prefix for TinyBERT's, or the other way round", sibling_encoder_prefix),
    ("a head model's checkpoint, for a base model", head_checkpoint_into_base_model),
    ("a base model's checkpoint, for a head model", base_checkpoint_into_head_model),
)


def to_our_names(state: State, prefix: str, is_base_model: bool) -> State:
    """A checkpoint's weights under the names of a model with encoder prefix `prefix` (bert, tinybert or
    ernie), a base model or a head model, whichever layout of KEY_LAYOUTS the checkpoint has."""
    for _layout, rule in KEY_LAYOUTS:
        state = rule(state, prefix, is_base_model)
    return state


# ----------------------------------------------------------------------------------------------
# Writing weights


def save_weights(state: dict[str, np.ndarray], folder: Path, safe_serialization: bool = False) -> Path:
    """Write model.safetensors or model_state.pdparams atomically, and remove a stale file of the other
    kind (WEIGHTS_ORDER would otherwise let an old safetensors file win over new .pdparams)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if safe_serialization:
        from safetensors.numpy import save_file

        target, stale = folder / WEIGHTS_SAFETENSORS, folder / WEIGHTS_PDPARAMS
        with atomic_path(target) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(tmp), metadata={"format": "np"})
    else:
        target, stale = folder / WEIGHTS_PDPARAMS, folder / WEIGHTS_SAFETENSORS
        save_paddle(state, target)
    stale.unlink(missing_ok=True)
    return target


def load_model_weights(model: Any, folder: Path) -> None:
    """Load a folder's weights into `model` by its own parameter names; every one must be there
    (resuming a run: the folder was written from this very model)."""
    folder = Path(folder)
    weights = require_weights(folder)
    state = load_state(weights)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise UserError(f"{folder}: checkpoint lacks {len(missing)} weights of this model "
                        f"(e.g. {missing[0]}); was it saved by another model?")
    for k in own:
        require_float(k, state[k], weights)
    model.set_state_dict({k: state[k] for k in own})


# ----------------------------------------------------------------------------------------------
# Outputs: never an input, and replaced only when this project wrote them

OUTPUT_MARK = "tinybert_output.json"
# Files by which a folder written before OUTPUT_MARK existed is still recognisably this project's.
_OWN_SIGNS = ("train_log.jsonl", "inference_config.json", "model_config.json")


def check_not_an_input(output: str | os.PathLike, output_flag: str,
                       inputs: dict[str, str | os.PathLike | None]) -> None:
    """No output may be, contain, or lie inside an input of the same command (with or without an
    overwrite flag): writing there would destroy or mix with what the command reads."""
    out = Path(output).expanduser().resolve()
    for flag, given in inputs.items():
        if not given:
            continue
        inp = Path(given).expanduser().resolve()
        if out == inp:
            how = "is"
        elif inp.is_relative_to(out):
            how = "contains"
        elif out.is_relative_to(inp) and inp.is_dir():
            how = "lies inside"
        else:
            continue
        raise UserError(f"{output_flag} {output} {how} the input {flag} {given}: writing there would "
                        f"destroy it; choose another {output_flag}")


def mark_output(folder: str | os.PathLike, script: str) -> None:
    """Sign a folder as this project's output, so that an overwrite flag may later replace it."""
    write_json(Path(folder) / OUTPUT_MARK, {"written_by": script})


def is_own_output(folder: str | os.PathLike) -> bool:
    folder = Path(folder)
    return any((folder / name).exists() for name in (OUTPUT_MARK, *_OWN_SIGNS))


def check_output_folder(folder: str | os.PathLike, flag: str, overwrite: bool, overwrite_flag: str) -> None:
    """An output folder must be new, empty, or (with the overwrite flag) this project's own output."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{flag} {folder} is a file; it names the folder to write to")
    if not folder.exists() or not any(folder.iterdir()):
        return
    if not overwrite:
        raise UserError(f"{flag} {folder} exists and is not empty; pass {overwrite_flag} to replace it "
                        f"(only a folder this project wrote), or choose another {flag}")
    if not is_own_output(folder):
        shown = ", ".join(sorted(p.name for p in folder.iterdir())[:5])
        raise UserError(f"{overwrite_flag} replaces only a folder this project wrote, and {folder} is not one "
                        f"(it holds {shown}; no {OUTPUT_MARK}); remove it yourself or choose another {flag}")
