"""The one module that knows a model folder, and the atomic writers every output of the project goes through.

A model folder (PaddleNLP's layout, read and written by modeling.py, the trainer and the scripts):

    model.safetensors | model_state.pdparams   weights; when both exist, WEIGHTS_ORDER says which wins
    config.json | model_config.json           the flat form, or PaddleNLP 2.x's {"init_args": ...} form
    vocab.txt, tokenizer_config.json           tokenization.py

Reading: every way a user's file can be broken (missing, truncated, not JSON, a pickle that would run
code) becomes one errors.DataError naming the file. Writing: a file is written to a temporary sibling
and renamed into place, a folder is filled as a temporary sibling and swapped in, so a kill at any
moment leaves the old version or the new one, never half of one; an output has one writer at a time
(lock_output); every path a command writes is checked against its inputs (check_not_an_input).
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from tinybert.errors import DataError, UserError, first_line, naming

WEIGHTS_SAFETENSORS = "model.safetensors"
WEIGHTS_PDPARAMS = "model_state.pdparams"
# Which weights file wins when a folder has both: safetensors, since reading it runs no pickle.
WEIGHTS_ORDER = (WEIGHTS_SAFETENSORS, WEIGHTS_PDPARAMS)
CONFIG_JSON = "config.json"             # newer PaddleNLP / Hugging Face form: flat fields
CONFIG_PADDLENLP = "model_config.json"  # PaddleNLP 2.x form: {"init_args": [...], "init_class": ...}
CONFIG_ORDER = (CONFIG_JSON, CONFIG_PADDLENLP)
TORCH_SUFFIXES = (".bin", ".pt", ".pth")  # PyTorch checkpoints (Hugging Face's pytorch_model.bin)
TRAINING_ARGS = "training_args.json"    # the settings of the run that saved the folder (trainer.py)


# ----------------------------------------------------------------------------------------------
# Test hooks: named points of the writers where a test makes the process pause or die

_HOOK_COUNTS: dict[str, int] = {}


def hook(point: str) -> None:
    """A named point of a writer. For tests only, by environment: TINYBERT_KILL_AT=POINT kills this process
    there with SIGKILL (as a crash or the out-of-memory killer would: nothing runs after it), and
    TINYBERT_PAUSE_AT=POINT:SECONDS sleeps there, saying so on stderr (a test starts a second writer then).
    POINT@N acts at the point's Nth passage. Without these variables nothing happens."""
    kill, pause = os.environ.get("TINYBERT_KILL_AT"), os.environ.get("TINYBERT_PAUSE_AT")
    if not kill and not pause:
        return
    _HOOK_COUNTS[point] = count = _HOOK_COUNTS.get(point, 0) + 1
    here = (point, f"{point}@{count}")
    if kill in here:
        os.kill(os.getpid(), signal.SIGKILL)
    if pause and pause.rpartition(":")[0] in here:
        print(f"paused at {point}", file=sys.stderr, flush=True)
        time.sleep(float(pause.rpartition(":")[2]))


# ----------------------------------------------------------------------------------------------
# One writer per output: a lock beside it, held while the writer lives

_HELD: dict[Path, int] = {}  # lock file -> open descriptor, for the outputs this process holds


def lock_path(output: str | os.PathLike) -> Path:
    """The lock file of an output (a folder or a file): a hidden sibling, so that swapping the output in
    and out never moves it."""
    out = Path(output).expanduser().resolve()
    return out.with_name(f".{out.name}.lock")


def lock_output(output: str | os.PathLike, flag: str, wait: bool = False) -> None:
    """Hold `output` for this process until unlock_output() or the process ends (a second call is a no-op).

    The lock is the kernel's (flock) on the lock file, so it ends with the process however it ends: a lock
    left by a dead process is simply taken. A process that finds it held is refused with one line naming
    the output and the holder (pid, host, command), which the holder writes into the lock file; with `wait`
    (a shared cache entry that one process fills for all) it waits for the holder instead."""
    path = lock_path(output)
    if path in _HELD or fcntl is None:  # no flock (Windows): one writer per output is then the user's care
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise UserError(f"{flag} {output} is being written by another process ({holder}); wait for it to "
                            f"end, or choose another {flag}") from None
        except OSError as e:  # a file system without locks: write unguarded, as before locks existed
            os.close(fd)
            print(f"note: cannot lock {path} ({e.strerror}); nothing keeps a second writer out of {output}",
                  file=sys.stderr)
            return
        # The last holder removes the file as it lets go: if that happened between our open and our lock,
        # we hold a file nobody else will see, so start again on the current one.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": shlex.join(sys.argv)}
    os.write(fd, json.dumps(holder).encode("utf-8"))
    _HELD[path] = fd
    hook("output_locked")


def unlock_output(output: str | os.PathLike) -> None:
    """Let go of an output this process holds: the lock file goes, then the lock."""
    path = lock_path(output)
    fd = _HELD.pop(path, None)
    if fd is not None:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


@contextlib.contextmanager
def writing(output: str | os.PathLike, flag: str, wait: bool = False) -> Iterator[None]:
    """Hold `output` while the block writes it (lock_output), and let go after, unless this process held it
    already (an outer block that goes on holding it)."""
    held_before = lock_path(output) in _HELD
    lock_output(output, flag, wait)
    try:
        yield
    finally:
        if not held_before:
            unlock_output(output)


def _read_holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f"pid {holder['pid']} on {holder['host']}: {holder['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "it has not said which yet"


# ----------------------------------------------------------------------------------------------
# Atomic writers
#
# Temporary names carry the writer's pid and a random token, so no two writers ever share one. A folder is
# written as .NAME.tmp-ID, renamed .NAME.new-ID once complete (the name is its completion mark), then swapped
# in; the version it replaces is .NAME.old-ID while the swap lasts. recover_dir() finishes a swap a kill
# interrupted: the folder's own name always ends up on a complete version.


def _unique() -> str:
    return f"{os.getpid()}-{secrets.token_hex(3)}"


def _tmp_sibling(path: Path) -> Path:
    """A hidden sibling with the same suffix (numpy and paddle pick the format by it), unique to this writer."""
    return path.with_name(f".{path.stem}.tmp-{_unique()}{path.suffix}")


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


def atomic_dir(final_dir: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Fill a temporary sibling folder with `write(folder)`, then swap it in for `final_dir`.

    Call while holding the output (lock_output): an earlier writer's interrupted swap is finished first
    (recover_dir). Where the system can exchange two names in one step (Linux), `final_dir` never stops
    existing; elsewhere a kill between the two renames leaves complete versions that recover_dir puts back."""
    final_dir = Path(final_dir)
    recover_dir(final_dir)
    unique = _unique()
    tmp = final_dir.with_name(f".{final_dir.name}.tmp-{unique}")
    tmp.mkdir(parents=True)
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    new = final_dir.with_name(f".{final_dir.name}.new-{unique}")
    tmp.rename(new)  # the completion mark, after everything it certifies
    hook(f"{final_dir.name}.complete")
    if final_dir.exists() and _exchange(new, final_dir):
        hook(f"{final_dir.name}.swapped")
        shutil.rmtree(new)  # the previous version, now under the temporary name
        return
    old = final_dir.with_name(f".{final_dir.name}.old-{unique}")
    if final_dir.exists():
        final_dir.rename(old)
    hook(f"{final_dir.name}.set_aside")
    new.rename(final_dir)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths' names in one step (Linux renameat2 RENAME_EXCHANGE); False where that is not possible."""
    rename = getattr(_libc(), "renameat2", None)
    if rename is None:
        return False
    at_cwd, exchange = -100, 2  # AT_FDCWD, RENAME_EXCHANGE
    return rename(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    except OSError:
        return None


def complete_leftovers(final_dir: str | os.PathLike) -> list[Path]:
    """Complete versions of a folder an interrupted atomic_dir left beside it, the one to keep first:
    new ones (newest first), then the set-aside old ones ('.NAME.old' is an older version's name)."""
    final_dir = Path(final_dir)
    news = sorted(final_dir.parent.glob(f".{glob.escape(final_dir.name)}.new-*"), key=_mtime, reverse=True)
    olds = sorted(final_dir.parent.glob(f".{glob.escape(final_dir.name)}.old-*"), key=_mtime, reverse=True)
    legacy = [p for p in [final_dir.with_name(f".{final_dir.name}.old")] if p.exists()]
    return [p for p in news + olds + legacy if p.is_dir()]


def unfinished_leftovers(final_dir: str | os.PathLike) -> list[Path]:
    """Folders an atomic_dir was still filling when it stopped ('.NAME.tmp' is an older version's name)."""
    final_dir = Path(final_dir)
    found = sorted(final_dir.parent.glob(f".{glob.escape(final_dir.name)}.tmp-*"))
    return found + [p for p in [final_dir.with_name(f".{final_dir.name}.tmp")] if p.exists()]


def dir_leftovers(final_dir: str | os.PathLike) -> list[Path]:
    """Everything an interrupted atomic_dir may leave beside its folder."""
    return complete_leftovers(final_dir) + unfinished_leftovers(final_dir)


def recover_dir(final_dir: str | os.PathLike) -> None:
    """Finish an interrupted atomic_dir: a missing folder gets the newest complete version back (a new
    one, else the one set aside); then the other leftovers go. The only complete copy is never removed.
    Call while holding the output: a live writer's temporary folder would look like a leftover."""
    final_dir = Path(final_dir)
    complete = complete_leftovers(final_dir)
    if not final_dir.exists() and complete:
        complete.pop(0).rename(final_dir)
    for leftover in complete + unfinished_leftovers(final_dir):
        shutil.rmtree(leftover, ignore_errors=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# ----------------------------------------------------------------------------------------------
# What a run's inputs are: their content, hashed


def content_hash(path: str | os.PathLike) -> str:
    """A fast hash (blake2b) of a file's bytes, or of a model folder's weights, configs and vocabulary
    (names and bytes): two inputs with one hash are the same input wherever they lie."""
    path = Path(path)
    h = hashlib.blake2b(digest_size=16)
    if path.is_dir():
        weights = find_weights(path)
        files = ([weights] if weights else []) + config_files(path) + [
            path / name for name in ("vocab.txt", "tokenizer_config.json") if (path / name).is_file()]
    else:
        files = [path]
    for file in files:
        if path.is_dir():  # which file holds what is part of a folder's content
            h.update(file.name.encode("utf-8") + b"\0")
        with open(file, "rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------
# Finding a model folder and its files


def resolve_model_dir(name_or_path: str | os.PathLike) -> Path:
    """The one place a model name becomes a folder, for every script: a local folder (always wins), else a
    Hugging Face name (ORG/NAME: downloaded and converted once, convert.from_hub), else PaddleNLP's cache
    ($PPNLP_HOME/models/NAME), which a PaddleNLP built-in name fills on first use (named.fetch_named).

    What PaddleNLP keeps there for a built-in name (bert-base-uncased, ernie-3.0-base-zh, ernie-1.0, ...):
    the weights (2.8: model_state.pdparams; older versions: the download's own name, e.g.
    ernie_3.0_base_zh.pdparams; find_weights takes either), the vocabulary (its download name, and
    vocab.txt once PaddleNLP's tokenizer has loaded it) and no model config: configs.BUILTIN_CONFIGS has it."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    from tinybert.models import convert, named

    # ORG/NAME, unless ORG is a local folder (then NAME is a missing folder in it, and that is the error)
    if convert.is_hub_name(name) and not path.exists() and not Path(name.split("/")[0]).is_dir():
        return convert.from_hub(name)
    cached = named.cache_folder(name)
    if "/" not in name and os.sep not in name and cached.is_dir() and find_weights(cached):
        if name not in named.MODEL_FILES or named.is_complete(cached):
            return cached
    if name in named.MODEL_FILES:
        return named.fetch_named(name)
    raise UserError(
        f"model {name!r} not found: not a local folder, not a Hugging Face name (ORG/NAME), not one of "
        f"PaddleNLP's built-in names, and no weights in PaddleNLP's cache at {cached} (nothing is downloaded; "
        f"pass a local folder, or convert a Hugging Face folder with convert_checkpoint.py --from_hf HF_DIR "
        f"--output_dir OUT_DIR)")


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

        if path.suffix in TORCH_SUFFIXES:  # pytorch_model.bin: torch's zip format, read without torch
            loaded = safe_pickle.load_torch(path, "weights file")
        else:
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
