"""Read paddle.save files (PaddleNLP's .pdparams weights, and the pickled run state of an old last/)
without letting them run code.

A file written by paddle.save is a pickle, and unpickling calls whatever functions the file names.
`load` unpickles through an allow-list of the few callables paddle.save and pickle actually write
(numpy arrays, dtypes and scalars, OrderedDict, tuple/set/frozenset/complex, protocol 2's bytes
encoding, paddle's wrapper for a saved DenseTensor); any other name in the file is refused with one
errors.DataError naming the file and the name, before anything is called. Then it does what
paddle.load(path, return_numpy=True) does to the result (joins arrays split in slices, drops the
name table, unwraps saved Tensors), so the two return equal objects.

Protected: code execution while loading. Every callable a file can reach is in _SAFE or _GUARDED
below; none imports, opens, evaluates or calls anything the file chooses. numpy's own pickle format
is not safe to admit as it is: a file may re-set a dtype's state after an array uses it (give it an
object field over raw bytes) and crash the process. So the file never gets a numpy dtype or array:
numpy.dtype and _reconstruct give it placeholders that check every state against the one numpy
writes, and the arrays are built here, with dtypes the file never holds.
Memory: pickle's memo lets a few bytes of a file stand for any number of copies of an object, so a
small file could ask for any amount of memory. What a file builds (byte strings and arrays) is counted
before each is made, and a file that would build more than BUILD_FACTOR times its own size plus
BUILD_SLACK is refused (see _charge).
Not protected: a well-formed file with the wrong content (shapes, dtypes, values and names are not
checked: that is the caller's job).

paddle.get_rng_state() returns GeneratorState objects that pickle under the name
paddle.base.libpaddle.GeneratorState, which `load` refuses; the trainer stores RNG state as plain
numbers (training/trainstate.py's capture_rng_state).
"""
from __future__ import annotations

import _compat_pickle
import contextvars
import math
import os
import pickle
import re
import reprlib
import stat
from collections import OrderedDict
from typing import IO, Any, Callable

import numpy as np

from tinybert.errors import DataError

try:  # numpy 2 (numpy.core is a deprecated alias there)
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1
    from numpy.core import multiarray as _multiarray

# Keys paddle.save adds to a state dict and paddle.load takes out again.
BIG_PARAMS = "UnpackBigParamInfor@@"  # typos: disable-line  (protocol 2/3: arrays over 1 GiB, as slices)
NAME_TABLE = "StructuredToParameterName@@"  # {key: tensor name}

_HOLDS = "holds only arrays, numbers and strings"
# dtype kinds a file may hold: bool, integers, floats, complex, bytes, str. Not object, void
# (structured), datetime.
_DTYPE_KINDS = "biufcSU"


# What loading a file may build, in bytes: BUILD_FACTOR times the file's size plus BUILD_SLACK. A file
# written by paddle.save builds about twice its size (protocol 2 text -> bytes -> array; arrays over
# 1 GiB are joined from slices once more); far more means the memo repeats data a file holds once.
BUILD_FACTOR, BUILD_SLACK = 4, 64 << 20
# (file, bytes it may still build) of the load in progress.
_building: contextvars.ContextVar[tuple[str, list[int]]] = contextvars.ContextVar("safe_pickle_building")


def _charge(nbytes: int) -> None:
    """Count `nbytes` the file being loaded is about to build; past the bound, refuse before allocating."""
    current = _building.get(None)
    if current is None:  # not inside load()
        return
    path, left = current
    left[0] -= nbytes
    if left[0] < 0:
        size = os.stat(path).st_size
        raise DataError(path, None, f"refused to load: its arrays would take more than "
                                    f"{_size(BUILD_FACTOR * size + BUILD_SLACK)} of memory, from a file of "
                                    f"{_size(size)} (the bound is {BUILD_FACTOR} times the file's size plus "
                                    f"{_size(BUILD_SLACK)}); it is corrupt or made to exhaust memory")


# ----------------------------------------------------------------------------------------------
# What a file may call


class _Refused(Exception):
    """Raised inside the unpickler; `load` turns it into a DataError naming the file."""

    def __init__(self, name: str, detail: str = ""):
        super().__init__(name)
        self.name, self.detail = name, detail


class _ShortRepr(reprlib.Repr):
    """Reprs for messages, short, and never built in full for a large object first."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = 60
        self.maxlevel = 3

    def repr_bytes(self, obj: bytes, level: int) -> str:
        return repr(obj[:24]) + ("..." if len(obj) > 24 else "")

    repr_bytearray = repr_bytes

    def repr_OrderedDict(self, obj: OrderedDict, level: int) -> str:
        return self.repr_dict(obj, level)

    def repr_ndarray(self, obj: np.ndarray, level: int) -> str:
        return f"array(shape={obj.shape}, dtype={obj.dtype})"


_short = _ShortRepr()


def _shown(args: tuple) -> str:
    """Arguments as a call shows them: ('x', 1)."""
    return "(" + ", ".join(_short.repr(a) for a in args) + ")"


class _Guard:
    """A stand-in for a callable pickle or paddle.save writes, admitting only the arguments they write.

    No attributes and no __setstate__ (empty __slots__), and a new one for every use: a file cannot
    alter it.
    """

    __slots__ = ()
    name = ""

    def __repr__(self) -> str:
        return self.name

    def _refuse(self, args: tuple, detail: str = "") -> _Refused:
        return _Refused(self.name, _shown(args) + detail)


class _Latin1(_Guard):
    """_codecs.encode(text, "latin1"): how protocol 2 writes bytes (the data of every array)."""

    __slots__ = ()
    name = "_codecs.encode"

    def __call__(self, *args: Any) -> bytes:
        if len(args) == 2 and type(args[0]) is str and type(args[1]) is str and args[1] in ("latin1", "latin-1"):
            _charge(len(args[0]))
            return args[0].encode("latin-1")
        raise self._refuse(args)


class _Bytes(_Guard):
    """bytes(): how protocol 2 writes b"" (the data of an empty array)."""

    __slots__ = ()
    name = "builtins.bytes"

    def __call__(self, *args: Any) -> bytes:
        if not args:
            return b""
        if len(args) == 1 and type(args[0]) in (bytes, bytearray):
            _charge(len(args[0]))
            return bytes(args[0])
        raise self._refuse(args)


class _SavedDenseTensor(_Guard):
    """eval("data", {"data": array}): how paddle.save writes a core.DenseTensor. Nothing is evaluated:
    only that exact form is admitted, and it gives back the array."""

    __slots__ = ()
    name = "builtins.eval"

    def __call__(self, *args: Any) -> Any:
        if (len(args) == 2 and type(args[0]) is str and args[0] == "data" and type(args[1]) is dict
                and list(args[1]) == ["data"] and type(args[1]["data"]) in (_Array, np.ndarray)):
            return args[1]["data"]
        raise self._refuse(args)


class _NDArrayClass(_Guard):
    """numpy.ndarray: only as the first argument of _reconstruct; calling it is refused."""

    __slots__ = ()
    name = "numpy.ndarray"

    def __call__(self, *args: Any) -> None:
        raise self._refuse(args)


class _DTypeCall(_Guard):
    """numpy.dtype(spec, False, True), as an array's __reduce__ writes it: a _DType placeholder."""

    __slots__ = ()
    name = "numpy.dtype"

    def __call__(self, *args: Any) -> _DType:
        if len(args) == 3 and type(args[0]) is str and len(args[0]) <= 8 and args[1] is False and type(args[2]) is bool:
            try:
                dtype = np.dtype(args[0])
            except (TypeError, ValueError):
                raise self._refuse(args, " (not a dtype)") from None
            if dtype.kind in _DTYPE_KINDS and dtype.fields is None and dtype.subdtype is None:
                return _DType(args[0], dtype)
        raise self._refuse(args)


class _Reconstruct(_Guard):
    """numpy's _reconstruct(ndarray, (0,), b"b"), as an array's __reduce__ writes it: an _Array placeholder."""

    __slots__ = ()
    name = "numpy._core.multiarray._reconstruct"

    def __call__(self, *args: Any) -> _Array:
        if (len(args) == 3 and type(args[0]) is _NDArrayClass and type(args[1]) is tuple and args[1] == (0,)
                and type(args[2]) in (bytes, str) and args[2] in (b"b", "b")):
            return _Array()
        raise self._refuse(args)


class _Scalar(_Guard):
    """numpy's scalar(dtype, data): a numpy scalar such as np.float32(1.5)."""

    __slots__ = ()
    name = "numpy._core.multiarray.scalar"

    def __call__(self, *args: Any) -> Any:
        if len(args) == 2 and type(args[0]) is _DType and type(args[1]) in (bytes, str):
            data = args[1].encode("latin-1") if type(args[1]) is str else args[1]  # str: Python 2 files
            if len(data) == args[0].dtype.itemsize:
                return _multiarray.scalar(args[0].dtype, data)
        raise self._refuse(args)


class _FromBuffer(_Guard):
    """numpy's _frombuffer(buffer, dtype, shape, order): how protocol 5 writes a contiguous array."""

    __slots__ = ()
    name = "numpy._core.numeric._frombuffer"

    def __call__(self, *args: Any) -> np.ndarray:
        if len(args) == 4:
            buf, dtype, shape, order = args
            if (type(buf) in (bytes, bytearray) and type(dtype) is _DType and _is_shape(shape)
                    and type(order) is str and order in ("C", "F")):
                _charge(len(buf))
                try:
                    return np.frombuffer(buf, dtype=dtype.dtype).reshape(shape, order=order)
                except ValueError as e:
                    raise self._refuse(args, f" ({e})") from None
        raise self._refuse(args)


def _is_shape(shape: Any) -> bool:
    return type(shape) is tuple and all(type(n) is int and n >= 0 for n in shape)


class _DType:
    """What the file holds for a numpy dtype. Its one BUILD must carry the state numpy itself writes
    for that dtype (only the byte order may differ); the real dtype stays out of the file's reach."""

    __slots__ = ("spec", "dtype", "built")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, spec: str, dtype: np.dtype):
        self.spec, self.dtype, self.built = spec, dtype, False

    def __repr__(self) -> str:
        return f"dtype({self.spec!r})"

    def __setstate__(self, state: Any) -> None:
        if not self.built and type(state) is tuple and len(state) >= 2 and state[1] in ("<", ">", "|", "="):
            dtype = self.dtype if state[1] in ("|", "=") else self.dtype.newbyteorder(state[1])
            if dtype.__reduce__()[2] == state:
                self.dtype, self.built = dtype, True
                return
        raise _Refused("numpy.dtype", f"({self.spec!r}) with the state {_short.repr(state)}")


class _Array:
    """What the file holds for a numpy array until load swaps in the array its one BUILD made."""

    __slots__ = ("array",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __repr__(self) -> str:
        return "<array>"

    def __setstate__(self, state: Any) -> None:
        if self.array is None and type(state) is tuple and len(state) == 5:
            version, shape, dtype, fortran, data = state
            if (type(version) is int and _is_shape(shape) and type(dtype) is _DType and type(fortran) is bool
                    and type(data) in (bytes, str)):  # str: Python 2 files
                _charge(math.prod(shape) * dtype.dtype.itemsize)
                array = _multiarray._reconstruct(np.ndarray, (0,), b"b")
                try:
                    array.__setstate__((version, shape, dtype.dtype, fortran, data))
                except (ValueError, TypeError) as e:
                    raise _Refused("numpy.ndarray.__setstate__", f" ({e})") from None
                self.array = array
                return
        raise _Refused("numpy.ndarray.__setstate__", _shown((state,)))


def _numpy_names() -> dict[tuple[str, str], type[_Guard]]:
    names: dict[tuple[str, str], type[_Guard]] = {("numpy", "ndarray"): _NDArrayClass, ("numpy", "dtype"): _DTypeCall}
    for core in ("numpy.core", "numpy._core"):  # numpy 1 writes numpy.core, numpy 2 numpy._core
        names[(f"{core}.multiarray", "_reconstruct")] = _Reconstruct  # an array (protocols 0-4)
        names[(f"{core}.multiarray", "scalar")] = _Scalar  # a numpy scalar
        names[(f"{core}.numeric", "_frombuffer")] = _FromBuffer  # an array (protocol 5)
    return names


# Python's own types, given as they are: C types, which no file can modify (setattr on them fails).
_SAFE: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,  # OrderedDict(), then its items
    ("builtins", "tuple"): tuple,  # paddle.save writes a Tensor as tuple((name, array))
    ("builtins", "set"): set,  # protocols 2 and 3 write a set as set([...])
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,  # complex(re, im)
}
# Stand-ins, a new one for every use.
_GUARDED: dict[tuple[str, str], type[_Guard]] = {
    **_numpy_names(),
    ("_codecs", "encode"): _Latin1,
    ("builtins", "bytes"): _Bytes,
    ("builtins", "eval"): _SavedDenseTensor,
}


def _canonical(module: str, name: str) -> tuple[str, str]:
    """Python 3's name for a global; protocols 0-2 write Python 2's (__builtin__, commands, ...)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _Unpickler(pickle.Unpickler):
    """The C unpickler, with every global the file names looked up in the allow-list."""

    def find_class(self, module: str, name: str) -> Any:
        key = _canonical(module, name)
        if key in _SAFE:
            return _SAFE[key]
        if key in _GUARDED:
            return _GUARDED[key]()
        raise _Refused(".".join(key))


def _real(part: Any) -> Any:
    """A placeholder's array or dtype, for _swap_in_arrays."""
    if type(part) is _Array:
        if part.array is None:
            raise _Refused("numpy._core.multiarray._reconstruct", " without the array's data")
        return part.array
    if type(part) is _DType:
        return part.dtype
    if type(part) is OrderedDict and vars(part):
        raise _Refused("collections.OrderedDict", f" with attributes {_short.repr(vars(part))}")
    return part


def _swap_in_arrays(obj: Any) -> Any:
    return _map_parts(obj, _real, {})


def _map_parts(obj: Any, convert: Callable[[Any], Any], done: dict[int, tuple[Any, Any]]) -> Any:
    """obj with convert() applied to it and its parts; lists and dicts change in place (as in paddle.load).
    Each container is visited once: a file may share one many times over, or make a list hold itself.
    `done` keeps the originals alive, so that no id is reused while it is in use."""
    converted = convert(obj)
    if converted is not obj or type(obj) not in (dict, OrderedDict, list, tuple, set):
        return converted
    if id(obj) in done:
        return done[id(obj)][1]
    done[id(obj)] = (obj, obj)
    if type(obj) is list:
        obj[:] = [_map_parts(v, convert, done) for v in obj]
    elif type(obj) in (dict, OrderedDict):
        for key in obj:
            obj[key] = _map_parts(obj[key], convert, done)
    else:
        done[id(obj)] = (obj, type(obj)(_map_parts(v, convert, done) for v in obj))
    return done[id(obj)][1]


# ----------------------------------------------------------------------------------------------
# Loading


def load(path: str | os.PathLike, what: str = "weights file") -> Any:
    """paddle.load(path, return_numpy=True), through the allow-list; any bad file is one DataError.

    `what` names the kind of file in messages ("weights file", "optimizer state file", ...).
    """
    _check_is_file(path, what)
    token = _building.set((os.fspath(path), [BUILD_FACTOR * os.stat(path).st_size + BUILD_SLACK]))
    try:
        return _load(path, what)
    finally:
        _building.reset(token)


def _load(path: str | os.PathLike, what: str) -> Any:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            if not head:
                raise DataError(path, None, "empty file (0 bytes): truncated or corrupt; re-save or re-download it")
            f.seek(0)
            obj = _unpickle(f, path, head, what)
    except OSError as e:
        raise DataError(path, None, _unreadable(e)) from None
    try:
        return _like_paddle_load(obj, path)
    except RecursionError:
        raise DataError(path, None, "corrupt: nested too deeply to be a state dict; "
                                    "re-save or re-download it") from None


def _check_is_file(path: str | os.PathLike, what: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(path, None, f"{what} not found; check the path") from None
    except OSError as e:
        raise DataError(path, None, _unreadable(e)) from None
    if stat.S_ISDIR(mode):
        raise DataError(path, None, f"is a folder, not {_a(what)}; give the path of the file itself")
    if not stat.S_ISREG(mode):
        raise DataError(path, None, f"not a regular file, so not {_a(what)}; give the path of the file itself")


def _unreadable(e: OSError) -> str:
    return f"cannot read it ({e.strerror or e}); check that it exists and that you may read it"


def _unpickle(f: IO[bytes], path: str | os.PathLike, head: bytes, what: str) -> Any:
    try:
        obj = _Unpickler(f, encoding="latin1").load()  # latin1, as paddle.load (for Python 2 files)
        return _swap_in_arrays(obj)
    except _Refused as e:
        if _is_dotted_name(e.name):
            raise DataError(path, None, _refusal(e, what)) from None
        error: Exception = e  # a garbage name: damaged data, not an attack
    except (OSError, DataError):
        raise
    except MemoryError:
        size = _size(os.fstat(f.fileno()).st_size)
        raise DataError(path, None, f"out of memory loading it (a file of {size}): if that is far below the "
                                    "free memory, it is corrupt (re-save or re-download it); else free some") from None
    except Exception as e:  # the unpickler raises many types (EOFError, UnpicklingError, ValueError...)
        error = e
    if not _is_pickle_header(head):
        raise DataError(path, None, f"not {_a(what)} written by paddle.save: not a pickle ({_what_it_is(head)}); "
                                    "check that this is the right file")
    raise DataError(path, None, f"truncated or corrupt ({_reason(error)}); re-save or re-download it")


def _size(n: int) -> str:
    return f"{n} bytes" if n < 2**20 else f"{n / 2**20:.0f} MB"


def _refusal(e: _Refused, what: str, holds: str = _HOLDS) -> str:
    hint = ""
    if e.name.endswith("GeneratorState"):
        hint = "; paddle's RNG state must be saved as plain numbers (trainstate.capture_rng_state())"
    return (f"refused to load: it would call {e.name}{e.detail} ({_a(what)} {holds}); it is not {_a(what)} "
            f"or was tampered with; load only files you trust{hint}")


def _is_dotted_name(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", name) is not None


def _is_pickle_header(head: bytes) -> bool:
    """paddle.save writes protocol 2, 3 or 4; any pickle of protocol 2 or later starts 0x80 <protocol>."""
    return head[:1] == b"\x80" and (len(head) == 1 or 2 <= head[1] <= pickle.HIGHEST_PROTOCOL)


def _what_it_is(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return "it is a zip archive, e.g. a PyTorch checkpoint"
    if head.startswith(b"\x93NUMPY"):
        return "it is a .npy file"
    if head.startswith(b"\x89HDF"):
        return "it is an HDF5 file"
    if len(head) > 9 and head[8:10] in (b'{"', b"{}"):
        return "it looks like a safetensors file: name it *.safetensors"
    return f"it starts with {head[:8]!r}"


def _reason(e: Exception) -> str:
    if isinstance(e, _Refused):
        return f"it names a global {e.name!r}, not a Python name"
    text = str(e).strip().splitlines()
    first = text[0][:120] if text else ""
    if isinstance(e, EOFError) or "truncated" in first:
        return "it ends too early"
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def _a(what: str) -> str:
    """'a weights file', 'an optimizer state file', 'an RNG state file'."""
    first = what.split()[0] if what.split() else what
    vowel = first[:1] in "AEFHILMNORSX" if first.isupper() else first[:1].lower() in "aeiou"
    return f"{'an' if vowel else 'a'} {what}"


# ----------------------------------------------------------------------------------------------
# What paddle.load(..., return_numpy=True) does after unpickling (paddle/framework/io.py)


def _like_paddle_load(obj: Any, path: str | os.PathLike) -> Any:
    if isinstance(obj, dict):
        _join_big_params(obj, path)
        if NAME_TABLE in obj:  # a state dict: paddle.load only drops the name table
            del obj[NAME_TABLE]
            return obj
    if _holds_saved_tensor(obj, set()):
        return _unwrap_saved_tensors(obj)
    return obj


def _join_big_params(state: dict, path: str | os.PathLike) -> None:
    """Protocols 2 and 3 cannot hold more than 4 GB in one object, so paddle.save stores an array of
    more than (2**30 - 1) / itemsize elements (1 GiB) as flat slices "key@@.0", "key@@.1", ... and a
    table {key: {"OriginShape": shape, "slices": [slice keys]}}; join them back as paddle.load does."""
    if BIG_PARAMS not in state:
        return
    table = state[BIG_PARAMS]
    if not isinstance(table, dict):
        raise _bad_table(path, f"it is a {type(table).__name__}")
    joined: list[str] = []
    for key, info in table.items():
        state[key] = _join_slices(state, key, info, path)
        joined += info["slices"]
    for name in joined:
        state.pop(name, None)
    state.pop(BIG_PARAMS)


def _join_slices(state: dict, key: Any, info: Any, path: str | os.PathLike) -> np.ndarray:
    if not isinstance(info, dict) or not isinstance(info.get("slices"), list) or "OriginShape" not in info:
        raise _bad_table(path, f"the entry for {key!r} lacks 'slices' or 'OriginShape'")
    missing = [name for name in info["slices"] if not isinstance(name, str) or name not in state]
    if missing or not info["slices"]:
        raise _bad_table(path, f"slices of {key!r} are missing: {_shown(tuple(missing))}")
    parts = [state[name] for name in info["slices"]]
    if not all(type(p) is np.ndarray for p in parts):
        raise _bad_table(path, f"a slice of {key!r} is not an array")
    _charge(sum(p.nbytes for p in parts))
    try:
        return np.concatenate(parts).reshape(info["OriginShape"])
    except (ValueError, TypeError) as e:
        raise _bad_table(path, f"the slices of {key!r} do not make its shape ({_reason(e)})") from None


def _bad_table(path: str | os.PathLike, problem: str) -> DataError:
    return DataError(path, None, f"corrupt: its table of split arrays ({BIG_PARAMS}) is inconsistent: "
                                 f"{problem}; re-save or re-download it")


def _is_saved_tensor(obj: Any) -> bool:
    """paddle.save writes a Tensor outside a flat state dict as (name, array)."""
    return isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], np.ndarray)


def _holds_saved_tensor(obj: Any, seen: set[int]) -> bool:
    """`seen`: each container once (a file may share one many times over)."""
    if _is_saved_tensor(obj):
        return True
    if type(obj) not in (dict, OrderedDict, list, tuple) or id(obj) in seen:
        return False
    seen.add(id(obj))
    return any(_holds_saved_tensor(v, seen) for v in (obj.values() if isinstance(obj, dict) else obj))


def _unwrap_saved_tensors(obj: Any) -> Any:
    """Every (name, array) becomes the array, as in paddle.load."""
    return _map_parts(obj, lambda part: part[1] if _is_saved_tensor(part) else part, {})


# ----------------------------------------------------------------------------------------------
# PyTorch's zip format (pytorch_model.bin, torch.save since torch 1.6), read without torch
#
# The archive holds NAME/data.pkl, a pickle of the state dict, and NAME/data/KEY, each tensor storage's raw
# bytes. In the pickle a tensor is torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
# requires_grad, hooks[, metadata]) and a storage is a persistent id ('storage', torch.FloatStorage, KEY,
# device, numel). Those are all a file may name here, besides the allow-list above: each is a stand-in
# that builds a numpy array from the storage's bytes and checks every argument; nothing of torch is
# imported or called.

# torch's storage type -> the numpy dtype of its bytes (little-endian; bfloat16 is widened to float32).
TORCH_STORAGES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
                  "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
                  "ByteStorage": "u1", "BoolStorage": "?"}
# pickle's first bytes in torch's format before 1.6 (a protocol-2 pickle of its magic number)
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."


class _StorageType(_Guard):
    """torch.FloatStorage and its kin: only as the type in a storage's persistent id; calling it is refused."""

    __slots__ = ("kind",)

    def __init__(self, kind: str):
        self.kind = kind

    def __repr__(self) -> str:
        return f"torch.{self.kind}"

    def __call__(self, *args: Any) -> None:
        raise _Refused(f"torch.{self.kind}", _shown(args))


class _Storage:
    """A storage's elements as a flat numpy array (made here from the archive's bytes)."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array


class _RebuildTensor(_Guard):
    """torch._utils._rebuild_tensor_v2: the array of `size` and `stride` (in elements) from `offset` in the
    storage, copied, after checking that every element it reads lies inside the storage."""

    __slots__ = ()
    name = "torch._utils._rebuild_tensor_v2"

    def __call__(self, *args: Any) -> np.ndarray:
        if len(args) in (6, 7):
            storage, offset, size, stride, requires_grad, hooks = args[:6]
            metadata = args[6] if len(args) == 7 else None
            if (type(storage) is _Storage and type(offset) is int and offset >= 0 and _is_shape(size)
                    and _is_shape(stride) and len(size) == len(stride) and type(requires_grad) is bool
                    and type(hooks) is OrderedDict and not hooks and not vars(hooks)
                    and (metadata is None or (type(metadata) is dict and not metadata))):
                flat = storage.array
                last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset - 1
                if last < len(flat):
                    view = np.lib.stride_tricks.as_strided(flat[offset:], shape=size,
                                                           strides=[s * flat.itemsize for s in stride])
                    return np.array(view)
                raise self._refuse(args, f" (reads past the storage's {len(flat)} elements)")
        raise self._refuse(args)


class _RebuildParameter(_Guard):
    """torch._utils._rebuild_parameter(tensor, requires_grad, hooks): a Parameter is its array here."""

    __slots__ = ()
    name = "torch._utils._rebuild_parameter"

    def __call__(self, *args: Any) -> np.ndarray:
        if len(args) == 3 and type(args[0]) is np.ndarray and type(args[1]) is bool and type(args[2]) is OrderedDict:
            return args[0]
        raise self._refuse(args)


class _TorchUnpickler(_Unpickler):
    """The allow-list, plus tensors and their storages, read from the open archive."""

    def __init__(self, f: IO[bytes], archive: Any, prefix: str):
        super().__init__(f, encoding="latin1")
        self.archive, self.prefix, self.storages = archive, prefix, {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _RebuildTensor()
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _RebuildParameter()
        if module == "torch" and name in TORCH_STORAGES:
            return _StorageType(name)
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> _Storage:
        if not (type(pid) is tuple and len(pid) == 5 and pid[0] == "storage" and type(pid[1]) is _StorageType
                and type(pid[2]) is str and pid[2].isdigit() and type(pid[3]) is str and type(pid[4]) is int):
            raise _Refused("a persistent id", f" {_short.repr(pid)} (only tensor storages are admitted)")
        kind, key, numel = pid[1].kind, pid[2], pid[4]
        if key not in self.storages:
            self.storages[key] = _Storage(self._read_storage(kind, key, numel))
        return self.storages[key]

    def _read_storage(self, kind: str, key: str, numel: int) -> np.ndarray:
        dtype = np.dtype(TORCH_STORAGES[kind])
        name = f"{self.prefix}data/{key}"
        try:
            _charge(self.archive.getinfo(name).file_size)  # what inflating it would take, before it is read
            data = self.archive.read(name)
        except KeyError:
            raise _Refused("a storage", f" {key!r} that the archive does not hold") from None
        if numel < 0 or len(data) < numel * dtype.itemsize:
            raise _Refused("a storage", f" {key!r} of {numel} elements in {len(data)} bytes")
        array = np.frombuffer(data, dtype=dtype, count=numel)
        if kind == "BFloat16Storage":  # numpy has no bfloat16: its bits are float32's upper half
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _drop_state_dict_metadata(part: Any) -> Any:
    """torch's state dicts carry `_metadata` (module versions) as an attribute: dropped; any other refused."""
    if type(part) is OrderedDict and vars(part):
        if set(vars(part)) != {"_metadata"}:
            raise _Refused("collections.OrderedDict", f" with attributes {_short.repr(vars(part))}")
        vars(part).clear()
    return part


def load_torch(path: str | os.PathLike, what: str = "weights file") -> dict[str, np.ndarray]:
    """A PyTorch checkpoint in torch's zip format as {name: numpy array}, through the allow-list; any bad
    file is one DataError naming it; like load, it refuses a file that would build far more than its size."""
    _check_is_file(path, what)
    token = _building.set((os.fspath(path), [BUILD_FACTOR * os.stat(path).st_size + BUILD_SLACK]))
    try:
        return _load_torch(path, what)
    finally:
        _building.reset(token)


def _load_torch(path: str | os.PathLike, what: str) -> dict[str, np.ndarray]:
    import zipfile

    with open(path, "rb") as f:
        head = f.read(len(_TORCH_LEGACY_MAGIC))
    if head == _TORCH_LEGACY_MAGIC:
        raise DataError(path, None, "PyTorch's format before torch 1.6, which is not read here: re-save it with "
                                    "torch.save in a newer torch, or use the repository's model.safetensors")
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") <= 1]
            if len(pickles) != 1:
                raise DataError(path, None, f"not {_a(what)} in PyTorch's zip format: no single data.pkl in it")
            prefix = pickles[0][:-len("data.pkl")]
            byteorder = f"{prefix}byteorder"
            if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
                raise DataError(path, None, "a big-endian PyTorch checkpoint: re-save it on a little-endian machine")
            with archive.open(pickles[0]) as f:
                obj = _TorchUnpickler(f, archive, prefix).load()
                obj = _map_parts(obj, _drop_state_dict_metadata, {})
    except zipfile.BadZipFile as e:
        raise DataError(path, None, f"not {_a(what)} in PyTorch's zip format ({e}); truncated or corrupt: "
                                    "download it again") from None
    except _Refused as e:
        raise DataError(path, None, _refusal(e, what, "holds only tensors and their storages")) from None
    except DataError:
        raise
    except OSError as e:
        raise DataError(path, None, _unreadable(e)) from None
    except Exception as e:  # the unpickler raises many types on damaged data
        raise DataError(path, None, f"truncated or corrupt ({_reason(e)}); download it again") from None
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise DataError(path, None, f"not {_a(what)}: it holds a {type(obj).__name__}, not named tensors")
    return {str(k): v for k, v in obj.items()}
