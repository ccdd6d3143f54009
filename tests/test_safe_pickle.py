"""safe_pickle.load: equal to paddle.load(return_numpy=True) for what paddle.save writes; one DataError,
before anything runs, for a hostile or broken file; the RNG state an old last/ holds."""
from __future__ import annotations

import collections
import os
import pickle
import random
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.testing._private.utils as np_testing_utils
import paddle
import pytest

from tinybert.models import safe_pickle
from tinybert.training import trainstate
from tinybert.errors import DataError

PROTOCOLS = [2, 3, 4]


def assert_same(got: Any, want: Any, where: str = "") -> None:
    """Equal types, keys in the same order, arrays of equal dtype, shape and values."""
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, np.ndarray):
        assert (got.dtype, got.shape) == (want.dtype, want.shape), where
        assert np.array_equal(got, want, equal_nan=want.dtype.kind in "fc"), where
    elif isinstance(want, dict):
        assert list(got) == list(want), where
        for key in want:
            assert_same(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    else:
        assert got == want, where


def same_as_paddle(path: Path, what: str = "weights file") -> Any:
    got = safe_pickle.load(path, what)
    assert_same(got, paddle.load(str(path), return_numpy=True))
    return got


def load_error(path: Path | str, what: str = "weights file") -> str:
    with pytest.raises(DataError) as info:
        safe_pickle.load(path, what)
    assert type(info.value) is DataError
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    return message


class SmallModel(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.linear = paddle.nn.Linear(4, 3)
        self.embed = paddle.nn.Embedding(10, 4)
        self.half = self.create_parameter([2, 3], dtype="float16")
        self.register_buffer("positions", paddle.arange(6, dtype="int64"))
        self.register_buffer("mask", paddle.to_tensor([True, False, True]))
        self.register_buffer("brain", paddle.ones([2], dtype="bfloat16"))


# ----------------------------------------------------------------------------------------------
# What paddle.save writes loads as paddle.load loads it


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_model_state_dict(tmp_path: Path, protocol: int) -> None:
    paddle.seed(1)
    model = SmallModel()
    path = tmp_path / "model_state.pdparams"
    paddle.save(model.state_dict(), str(path), protocol=protocol)
    got = same_as_paddle(path)
    assert list(got) == list(model.state_dict())
    for key, tensor in model.state_dict().items():
        assert_same(got[key], tensor.numpy(), key)
    assert {str(v.dtype) for v in got.values()} == {"float32", "float16", "int64", "bool", "uint16"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_numpy_and_nested_dicts(tmp_path: Path, protocol: int) -> None:
    rng = np.random.default_rng(0)
    arrays = {"w": rng.standard_normal((5, 3)).astype("float32"), "ids": np.arange(7), "empty": np.zeros((0, 4)),
              "f64": np.array([np.nan, 1.5]), "scalar": np.array(3, dtype="int8")}
    paddle.save(arrays, str(tmp_path / "arrays.pdparams"), protocol=protocol)
    assert_same(same_as_paddle(tmp_path / "arrays.pdparams"), arrays)

    nested = {"model": {"w": paddle.ones([2, 2]), "b": paddle.zeros([2], dtype="float64")},
              "list": [paddle.arange(3), 1, "x", None], "tuple": (1, 2.5, "three"), "set": {1, 2},
              "od": collections.OrderedDict([("b", 1), ("a", np.float32(0.5))]), "np_int": np.int64(7),
              "flags": [True, False], "complex": 1 + 2j, "text": "héllo", "big_int": 2**70,
              "deep": {"a": {"b": {"c": [paddle.to_tensor([1.0])]}}}}
    path = tmp_path / "nested.pdopt"
    paddle.save(nested, str(path), protocol=protocol)
    got = same_as_paddle(path)
    assert_same(got["model"]["w"], np.ones((2, 2), "float32"))
    assert got["set"] == {1, 2} and got["od"] == collections.OrderedDict([("b", 1), ("a", 0.5)])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_tensor_saved_directly(tmp_path: Path, protocol: int) -> None:
    tensor = paddle.to_tensor([[1.0, 2.0], [3.0, 4.0]])
    paddle.save(tensor, str(tmp_path / "t.pdtensor"), protocol=protocol)
    assert_same(same_as_paddle(tmp_path / "t.pdtensor"), tensor.numpy())
    dense = tensor.value().get_tensor()  # paddle.save writes this one as eval("data", {"data": array})
    paddle.save(dense, str(tmp_path / "dense.pdtensor"), protocol=protocol)
    assert_same(same_as_paddle(tmp_path / "dense.pdtensor"), tensor.numpy())


def test_numpy_1_module_names(tmp_path: Path) -> None:
    """Files written under numpy 1 name numpy.core.multiarray, under numpy 2 numpy._core.multiarray."""
    path = tmp_path / "old.pdparams"
    paddle.save({"w": paddle.ones([3]), "v": np.float32(2.0)}, str(path), protocol=2)
    data = path.read_bytes()
    assert b"numpy._core.multiarray" in data
    path.write_bytes(data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy 2 on importing numpy.core
        want = paddle.load(str(path), return_numpy=True)
    assert_same(safe_pickle.load(path), want)


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_plain_pickle_of_arrays(tmp_path: Path, protocol: int) -> None:
    """Any protocol pickle writes (5 writes arrays with numpy's _frombuffer)."""
    obj = {"a": np.arange(6, dtype="float32").reshape(2, 3), "f": np.asfortranarray(np.ones((2, 3))),
           "e": np.zeros(0), "s": np.float64(1.5), "t": ("MT19937", np.arange(3, dtype="uint32"), 1, 0, 0.0)}
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    assert_same(same_as_paddle(path), obj)


# ----------------------------------------------------------------------------------------------
# Arrays over 1 GiB: paddle.save (protocol 2, 3) splits them, load joins them


def test_split_arrays_are_joined(tmp_path: Path) -> None:
    """A file in the layout paddle.save writes for an array over 1 GiB, with small slices."""
    big = np.arange(24, dtype="float32").reshape(2, 3, 4)
    flat = big.flatten()
    saved = {"small": np.ones(2), "big@@.0": flat[:10], "big@@.1": flat[10:20], "big@@.2": flat[20:],
             safe_pickle.NAME_TABLE: {"small": "p0", "big": "p1"},
             safe_pickle.BIG_PARAMS: {"big": {"OriginShape": big.shape, "slices": ["big@@.0", "big@@.1", "big@@.2"]}}}
    path = tmp_path / "split.pdparams"
    path.write_bytes(pickle.dumps(saved, protocol=3))
    got = same_as_paddle(path)
    assert list(got) == ["small", "big"]
    assert_same(got["big"], big)


@pytest.mark.parametrize("change, message", [
    (lambda t: t["big"].update(slices=["big@@.0", "gone"]), "slices of 'big' are missing"),
    (lambda t: t["big"].update(OriginShape=(5, 5)), "do not make its shape"),
    (lambda t: t["big"].pop("OriginShape"), "lacks 'slices' or 'OriginShape'"),
])
def test_inconsistent_split_table(tmp_path: Path, change, message: str) -> None:
    flat = np.arange(6.0)
    table = {"big": {"OriginShape": (2, 3), "slices": ["big@@.0", "big@@.1"]}}
    change(table)
    path = tmp_path / "split.pdparams"
    path.write_bytes(pickle.dumps({"big@@.0": flat[:3], "big@@.1": flat[3:], safe_pickle.BIG_PARAMS: table}, 3))
    assert message in load_error(path)


def _available_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@pytest.mark.skipif(_available_memory() < 12 * 2**30, reason="needs 12 GiB of free memory")
def test_real_split_of_a_tensor_over_1_gib(tmp_path: Path) -> None:
    """paddle.save(protocol=3) splits an array of more than (2**30 - 1) / itemsize elements."""
    shape = (2**15 + 1, 2**15)  # uint8: 1 GiB + 32 KiB, so two slices
    path = tmp_path / "big.pdparams"
    tensor = paddle.full(shape, 7, dtype="uint8")
    paddle.save({"big": tensor, "small": paddle.ones([2])}, str(path), protocol=3)
    del tensor
    with open(path, "rb") as f:
        f.seek(-4096, os.SEEK_END)
        assert safe_pickle.BIG_PARAMS.encode() in f.read()  # the table comes last
    got = safe_pickle.load(path)
    assert list(got) == ["small", "big"]
    assert got["big"].shape == shape and got["big"].dtype == np.uint8
    assert got["big"].min() == 7 and got["big"].max() == 7
    del got
    want = paddle.load(str(path), return_numpy=True)
    assert list(want) == ["small", "big"] and want["big"].shape == shape


# ----------------------------------------------------------------------------------------------
# Optimizer, scheduler, loss scaler


def _one_training_step() -> tuple[paddle.optimizer.Optimizer, paddle.optimizer.lr.LRScheduler]:
    paddle.seed(3)
    with paddle.utils.unique_name.guard():  # the same parameter and accumulator names each time
        model = paddle.nn.Linear(4, 3)
        scheduler = paddle.optimizer.lr.LambdaDecay(0.01, lambda step: 0.9 ** step)
        optimizer = paddle.optimizer.AdamW(learning_rate=scheduler, parameters=model.parameters(),
                                           grad_clip=paddle.nn.ClipGradByGlobalNorm(1.0), weight_decay=0.01)
        model(paddle.rand([2, 4])).mean().backward()
        optimizer.step()
        optimizer.clear_grad()
        scheduler.step()
    return optimizer, scheduler


# What GradScaler.state_dict() returns when enabled (on a GPU; on a CPU it is disabled and returns {}).
ENABLED_SCALER = {"scale": np.array([32768.0], dtype="float32"), "incr_ratio": 2.0, "decr_ratio": 0.5,
                  "incr_every_n_steps": 1000, "decr_every_n_nan_or_inf": 2, "incr_count": 1, "decr_count": 0,
                  "use_dynamic_loss_scaling": True}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_optimizer_scheduler_and_scaler(tmp_path: Path, protocol: int) -> None:
    optimizer, scheduler = _one_training_step()
    state = optimizer.state_dict()
    assert any("moment1" in k for k in state) and state["LR_Scheduler"]["last_epoch"] == 1
    paddle.save(state, str(tmp_path / "opt.pdopt"), protocol=protocol)
    got = same_as_paddle(tmp_path / "opt.pdopt", "optimizer state file")
    for key, value in state.items():
        assert_same(got[key], value.numpy() if isinstance(value, paddle.Tensor) else value, key)

    scaler = paddle.amp.GradScaler(init_loss_scaling=32768)
    for scaler_state in (scaler.state_dict(), ENABLED_SCALER, None):
        everything = {"optimizer": state, "scheduler": scheduler.state_dict(), "scaler": scaler_state}
        paddle.save(everything, str(tmp_path / "all.pdopt"), protocol=protocol)
        got = same_as_paddle(tmp_path / "all.pdopt", "optimizer state file")
        assert got["scheduler"] == {"last_epoch": 1, "last_lr": pytest.approx(0.009)}
        assert_same(got["scaler"], scaler_state)
        paddle.save(scaler_state or {}, str(tmp_path / "scaler.pd"), protocol=protocol)
        same_as_paddle(tmp_path / "scaler.pd")


def test_loaded_optimizer_state_restores(tmp_path: Path) -> None:
    optimizer, _ = _one_training_step()
    paddle.save(optimizer.state_dict(), str(tmp_path / "opt.pdopt"))
    fresh, _ = _one_training_step()
    fresh.set_state_dict(safe_pickle.load(tmp_path / "opt.pdopt", "optimizer state file"))
    for key, value in optimizer.state_dict().items():
        if isinstance(value, paddle.Tensor):
            assert_same(fresh.state_dict()[key].numpy(), value.numpy(), key)


# ----------------------------------------------------------------------------------------------
# Hostile files: refused, naming the file and the global, before anything runs


class Calls:
    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args


def _touch(marker: Path) -> str:
    return f"touch {marker}"


HOSTILE = {
    "os.system": (lambda m: Calls(os.system, _touch(m)), "posix.system"),
    "eval": (lambda m: Calls(eval, f"__import__('os').system({_touch(m)!r})"), 'builtins.eval("__import__'),
    "exec": (lambda m: Calls(exec, f"open({str(m)!r}, 'w')"), "builtins.exec"),
    "popen": (lambda m: Calls(subprocess.Popen, ["touch", str(m)]), "subprocess.Popen"),
    "numpy runstring": (lambda m: Calls(np_testing_utils.runstring, f"open({str(m)!r}, 'w')", {}),
                        "numpy.testing._private.utils.runstring"),
    "getattr": (lambda m: Calls(getattr, "text", "format"), "builtins.getattr"),
    "codecs": (lambda m: Calls(__import__("_codecs").encode, "x", "rot13"), "_codecs.encode('x', 'rot13')"),
    "inside a state dict": (lambda m: {"w": np.ones(3), "evil": Calls(os.system, _touch(m)), "z": np.ones(1)},
                            "posix.system"),
    "in a nested list": (lambda m: {"opt": {"x": [1, (2, Calls(os.system, _touch(m)))]}}, "posix.system"),
}


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_pickle_is_refused_before_it_runs(tmp_path: Path, case: str, protocol: int) -> None:
    make, name = HOSTILE[case]
    marker = tmp_path / "pwned"
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(pickle.dumps(make(marker), protocol=protocol))
    message = load_error(path)
    assert f"refused to load: it would call {name}" in message
    assert "a weights file holds only arrays, numbers and strings" in message
    assert "load only files you trust" in message
    assert not marker.exists()


def test_numpy_load_chain_is_refused(tmp_path: Path) -> None:
    """numpy.load(path, None, True) would unpickle a second file with allow_pickle=True."""
    marker = tmp_path / "pwned"
    inner = tmp_path / "inner.npy"
    inner.write_bytes(pickle.dumps(Calls(os.system, _touch(marker))))
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(pickle.dumps({"w": Calls(np.load, str(inner), None, True)}, protocol=4))
    assert "it would call numpy.load" in load_error(path)
    assert not marker.exists()


def test_paddle_s_own_wrappers_admit_only_their_form(tmp_path: Path) -> None:
    path = tmp_path / "x.pdparams"
    path.write_bytes(pickle.dumps(Calls(eval, "data", {"data": np.ones(2), "os": 1})))
    assert "it would call builtins.eval('data'" in load_error(path)
    path.write_bytes(pickle.dumps(Calls(bytes, 10**12)))
    assert "it would call builtins.bytes(1000000000000)" in load_error(path)


def test_a_file_cannot_alter_the_allowed_callables(tmp_path: Path) -> None:
    """BUILD on an allowed callable (to plant attributes for a later load) fails: corrupt, not loaded."""
    for target in (b"c_codecs\nencode\n", b"c__builtin__\neval\n", b"ccollections\nOrderedDict\n",
                   b"cnumpy\nndarray\n", b"cnumpy._core.multiarray\n_reconstruct\n"):
        for state in (b"(dS'name'\nS'x'\ns", b"(N(dS'name'\nS'x'\nstt"):
            path = tmp_path / "x.pdparams"
            path.write_bytes(b"\x80\x02" + target + state + b"b.")
            assert "truncated or corrupt" in load_error(path)
    paddle.save({"w": paddle.ones([2])}, str(tmp_path / "ok.pdparams"), protocol=2)
    assert_same(safe_pickle.load(tmp_path / "ok.pdparams"), {"w": np.ones(2, "float32")})


# numpy's pickle format itself: a file may re-set a dtype's state after an array uses it (an object
# field over raw bytes crashes the process), so dtypes and arrays only ever get the states numpy writes.


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _text(s: str) -> bytes:
    return b"X" + len(s).to_bytes(4, "little") + s.encode()


def _int(n: int) -> bytes:
    return b"J" + n.to_bytes(4, "little", signed=True)


def _tuple(*parts: bytes) -> bytes:
    return b"(" + b"".join(parts) + b"t"


def _dtype(spec: str, state: bytes | None = None, memo: int | None = None) -> bytes:
    made = _global("numpy", "dtype") + _tuple(_text(spec), b"\x89", b"\x88") + b"R"
    made += b"" if memo is None else b"q" + bytes([memo])
    return made + (_dtype_state() if state is None else state) + b"b"


def _dtype_state(endian: str = "<", names: bytes = b"N", fields: bytes = b"N", flags: int = 0) -> bytes:
    return _tuple(_int(3), _text(endian), b"N", names, fields, _int(-1), _int(-1), _int(flags))


def _array(dtype: bytes, data: bytes, shape: int = 2, reconstruct_shape: int = 0) -> bytes:
    made = (_global("numpy.core.multiarray", "_reconstruct")
            + _tuple(_global("numpy", "ndarray"), _tuple(_int(reconstruct_shape)), b"C\x01b") + b"R")
    return made + _tuple(_int(1), _tuple(_int(shape)), dtype, b"\x89", b"C" + bytes([len(data)]) + data) + b"b"


def _file(tmp_path: Path, *parts: bytes) -> Path:
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(b"\x80\x03]" + b"(" + b"".join(parts) + b"e.")  # a list of the parts
    return path


DATA = np.array([1.5, -2.0]).tobytes()
OBJECT_FIELD = dict(names=_tuple(_text("x")), fields=b"}" + _text("x") + _tuple(_dtype("f8"), _int(0)) + b"s",
                    flags=27)


def test_hand_made_array_loads(tmp_path: Path) -> None:
    """The hand-assembled pickles below are well formed: without the tampering they load."""
    path = _file(tmp_path, _array(_dtype("f8"), DATA), _array(_dtype("f8", _dtype_state(">")), DATA[::-1]))
    # numpy turns a big-endian array native as it unpickles it
    assert_same(same_as_paddle(path), [np.array([1.5, -2.0]), np.array([-2.0, 1.5])])


@pytest.mark.parametrize("parts, name", [
    ([_array(_dtype("V8"), DATA[:8], shape=1)], "numpy.dtype('V8', False, True)"),
    ([_array(_dtype("O"), DATA, shape=1)], "numpy.dtype('O', False, True)"),
    ([_array(_dtype("f8,f8"), DATA, shape=1)], "numpy.dtype('f8,f8', False, True)"),
    ([_array(_dtype("f8", _dtype_state(**OBJECT_FIELD)), DATA)], "numpy.dtype('f8') with the state (3, '<', None"),
    ([_array(_dtype("f8", _dtype_state(flags=1)), DATA)], "numpy.dtype('f8') with the state"),
    # after an array uses it, the dtype is given an object field
    ([_array(_dtype("f8", memo=9), DATA), b"h\x09" + _dtype_state(**OBJECT_FIELD) + b"b"],
     "numpy.dtype('f8') with the state"),
    ([_array(_dtype("f8"), DATA) + _tuple(_int(1), _tuple(_int(2)), _dtype("f8"), b"\x89", b"C\x00") + b"b"],
     "numpy.ndarray.__setstate__"),
    ([_array(_dtype("f8"), DATA[:8])], "numpy.ndarray.__setstate__ (buffer size does not match"),
    ([_array(_dtype("f8"), DATA, reconstruct_shape=10**9)],
     "numpy._core.multiarray._reconstruct(numpy.ndarray, (1000000000,), b'b')"),
    ([_global("numpy", "ndarray") + _tuple(_tuple(_int(10**9))) + b"R"], "numpy.ndarray((1000000000,))"),
    ([_global("numpy.core.multiarray", "scalar") + _tuple(_dtype("f8"), b"C\x01x") + b"R"],
     "numpy._core.multiarray.scalar(dtype('f8'), b'x')"),
])
def test_numpy_state_tampering_is_refused(tmp_path: Path, parts: list[bytes], name: str) -> None:
    message = load_error(_file(tmp_path, *parts))
    assert f"refused to load: it would call {name}" in message


def test_arrays_are_out_of_the_file_s_reach(tmp_path: Path) -> None:
    """Until loading ends the file holds a placeholder: writing into it fails (the file is corrupt)."""
    path = _file(tmp_path, _array(_dtype("f8"), DATA) + _int(0) + _int(7) + b"s")
    assert "truncated or corrupt" in load_error(path)


def test_shared_and_self_holding_parts(tmp_path: Path) -> None:
    """Each container is walked once: 2**60 paths through 60 shared lists load at once."""
    shared: list = [np.ones(2), ("w", np.zeros(1))]
    for _ in range(60):
        shared = [shared, shared]
    itself: list = [np.ones(1)]
    itself.append(itself)
    path = tmp_path / "state.pdopt"
    path.write_bytes(pickle.dumps({"shared": shared, "itself": itself}, protocol=4))
    got = safe_pickle.load(path, "optimizer state file")
    inner = got["shared"]
    for _ in range(60):
        assert inner[0] is inner[1]
        inner = inner[0]
    assert_same(inner, [np.ones(2), np.zeros(1)])  # a (name, array) pair is an array, as in paddle.load
    assert got["itself"][1] is got["itself"] and type(got["itself"][0]) is np.ndarray


def test_an_ordered_dict_with_attributes_is_refused(tmp_path: Path) -> None:
    ordered_dict = _global("collections", "OrderedDict") + b")R"
    path = _file(tmp_path, ordered_dict + b"}" + _text("x") + _array(_dtype("f8"), DATA) + b"sb")  # BUILD: attributes
    assert "it would call collections.OrderedDict with attributes {'x': <array>}" in load_error(path)


def test_loading_imports_no_paddle(tmp_path: Path) -> None:
    path = tmp_path / "state.pdparams"
    path.write_bytes(pickle.dumps({"w": np.ones(2)}))
    code = f"import sys; from tinybert.models import safe_pickle; safe_pickle.load({str(path)!r}); print('paddle' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(safe_pickle.__file__).parent, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------------------------
# Broken files: one DataError naming the file


@pytest.fixture
def weights(tmp_path: Path) -> bytes:
    paddle.seed(0)
    path = tmp_path / "good.pdparams"
    paddle.save(SmallModel().state_dict(), str(path))
    return path.read_bytes()


@pytest.mark.parametrize("keep", [1, 2, 10, 0.5, -1])
def test_truncated_file(tmp_path: Path, weights: bytes, keep: float) -> None:
    cut = int(len(weights) * keep) if isinstance(keep, float) else keep % len(weights)
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(weights[:cut])
    message = load_error(path)
    assert "truncated or corrupt" in message and "re-save or re-download it" in message


@pytest.mark.parametrize("seed", range(12))
def test_random_bytes(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(rng.bytes(int(rng.integers(1, 3000))))
    message = load_error(path)
    assert "not a weights file written by paddle.save: not a pickle" in message or "truncated or corrupt" in message
    path.write_bytes(b"\x80\x04" + rng.bytes(500))
    assert "truncated or corrupt" in load_error(path)


@pytest.mark.parametrize("seed", range(40))
def test_damaged_bytes_never_escape_as_another_error(tmp_path: Path, weights: bytes, seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = bytearray(weights)
    for i in rng.integers(2, len(data), size=int(rng.integers(1, 4))):
        data[i] = int(rng.integers(0, 256))
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(bytes(data))
    try:
        safe_pickle.load(path)
    except DataError as e:
        assert str(e).startswith(f"{path}: ")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(b"")
    assert "empty file (0 bytes)" in load_error(path)


def test_missing_folder_and_special_files(tmp_path: Path) -> None:
    assert "optimizer state file not found" in load_error(tmp_path / "nope.pdopt", "optimizer state file")
    assert "is a folder, not a weights file" in load_error(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "not a regular file" in load_error(fifo)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(b"\x80\x04N.")

    def denied(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(safe_pickle, "open", denied, raising=False)
    assert "cannot read it (Permission denied)" in load_error(path)


def test_out_of_memory(tmp_path: Path, weights: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    class Starved(safe_pickle._Unpickler):
        def load(self) -> Any:
            raise MemoryError

    monkeypatch.setattr(safe_pickle, "_Unpickler", Starved)
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(weights)
    assert f"out of memory loading it (a file of {len(weights)} bytes)" in load_error(path)


def test_other_formats_are_named(tmp_path: Path) -> None:
    path = tmp_path / "pytorch_model.bin"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"x")
    assert "not a pickle (it is a zip archive, e.g. a PyTorch checkpoint)" in load_error(path)
    path = tmp_path / "model.pdparams"
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0\0\0\0")
    assert "looks like a safetensors file" in load_error(path)


def test_what_names_the_kind_of_file(tmp_path: Path) -> None:
    path = tmp_path / "rng_state.pth"
    path.write_bytes(pickle.dumps(Calls(os.system, "true")))
    message = load_error(path, "RNG state file")
    assert "(an RNG state file holds only" in message and "it is not an RNG state file" in message
    assert "an optimizer state file holds" in load_error(path, "optimizer state file")


# ----------------------------------------------------------------------------------------------
# RNG state


def _draws() -> tuple:
    return paddle.rand([5]).numpy(), np.random.rand(5), [random.random() for _ in range(5)]


@pytest.mark.parametrize("writer", ["paddle.save", "pickle.dump"])
def test_legacy_rng_state_round_trip_reproduces_draws(tmp_path: Path, writer: str) -> None:
    """rng_state.pdparams of an old last/: numpy's state an array in a tuple, Python's nested tuples."""
    paddle.seed(11)
    np.random.seed(12)
    random.seed(13)
    _draws()
    path = tmp_path / "rng_state.pdparams"
    # as the trainer wrote it before rng_state.json: one record per rank
    records = [{"paddle": trainstate.capture_rng_state()["paddle"], "numpy": np.random.get_state(),
                "python": random.getstate()}]
    if writer == "paddle.save":
        paddle.save(records, str(path))
    else:
        path.write_bytes(pickle.dumps(records))
    first = _draws()
    _draws()
    loaded = same_as_paddle(path, "RNG state file")
    trainstate.restore_rng_state(loaded[0], str(path))
    assert_same(_draws(), first)


def test_raw_rng_state_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rng_state.pth"
    with open(path, "wb") as f:
        pickle.dump([{"paddle": paddle.get_rng_state(), "numpy": np.random.get_state()}], f)
    message = load_error(path, "RNG state file")
    assert "it would call paddle.base.libpaddle.GeneratorState" in message
    assert "trainstate.capture_rng_state()" in message
