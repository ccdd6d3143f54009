"""Every door safe, round two (issue 21, rules 4-7), each at its mechanism: operating-system errors at the
error edge (cli.run_main) and the writers, values checked by the loaders, caches keyed by content, memory
bounded by what is kept."""
from __future__ import annotations

import errno
import io
import json
import os
import pickle
import pickletools
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from builders import ROOT, make_checkpoint, write_vocab

from tinybert import cli, errors, inference
from tinybert.augmentation.glove import load_glove
from tinybert.data import datafiles, tasks
from tinybert.data import tokenization
from tinybert.data.tokenization import BertTokenizer
from tinybert.errors import DataError
from tinybert.models import checkpoints, modeling, safe_pickle
from tinybert.training import runlog


def one_line_exit_2(capsys, call) -> str:
    """Run a script's main; it must exit 2 with one 'error:' line on stderr. Returns that line."""
    with pytest.raises(SystemExit) as stop:
        call()
    assert stop.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("models") / "ckpt", labels=["neg", "neu", "pos"])


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory) -> Path:
    import export_model

    out = tmp_path_factory.mktemp("exports") / "exp"
    export_model.export_model(checkpoint, out)
    return out


def copy_of(folder: Path, tmp_path: Path, name: str = "copy") -> Path:
    target = tmp_path / name
    shutil.copytree(folder, target)
    return target


# ------------------------------------------------------------------------------------ rule 4: OS errors


@pytest.mark.parametrize("error, expected", [
    (OSError(errno.EROFS, "Read-only file system", "out/p.tsv"),
     "error: cannot write out/p.tsv: read-only file system; choose a folder you may write to"),
    (OSError(errno.ENOSPC, "No space left on device", "out/last/model_state.pdparams"),
     "error: cannot write out/last/model_state.pdparams: no space left on the device; free some space or "
     "write elsewhere"),
    (PermissionError(errno.EACCES, "Permission denied", "data/train.csv"),
     "error: cannot use data/train.csv: permission denied; check that you may read (or write) it"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "nope/x"),
     "error: nope/x: no such file or folder"),
])
def test_error_edge_turns_os_errors_into_one_line(capsys, error, expected):
    @cli.run_main
    def main(argv=None):
        raise error

    assert one_line_exit_2(capsys, lambda: main([])) == expected


def test_error_edge_refuses_arguments_that_are_not_utf8_before_running(capsys):
    ran = []

    @cli.run_main
    def main(argv=None):
        ran.append(argv)

    line = one_line_exit_2(capsys, lambda: main(["--output_dir", os.fsdecode(b"out\xff")]))
    assert line == ("error: the argument b'out\\xff' holds byte 0xff, which is not UTF-8: give file and folder "
                    "names as UTF-8 text")
    assert ran == []


def test_error_edge_keeps_the_traceback_of_a_bug():
    @cli.run_main
    def main(argv=None):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        main([])


def test_naming_gives_a_write_error_its_path_and_hides_the_temporary_name(tmp_path):
    with pytest.raises(OSError) as caught, errors.naming("out/p.tsv"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.filename == "out/p.tsv" and caught.value.errno == errno.ENOSPC
    with pytest.raises(PermissionError) as caught, errors.naming("out/p.tsv", "out/.p.tmp.tsv"):
        raise PermissionError(errno.EACCES, "Permission denied", "out/.p.tmp.tsv")
    assert caught.value.filename == "out/p.tsv"
    with pytest.raises(OSError) as caught, errors.naming("out/p.tsv"):
        raise OSError(errno.ENOENT, "No such file", "data/other.csv")  # another file's error keeps its name
    assert caught.value.filename == "data/other.csv"


def test_a_safetensors_write_error_becomes_the_os_error_it_reports(tmp_path, monkeypatch):
    import safetensors.numpy

    def full_disk(*args, **kwargs):
        raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.numpy, "save_file", full_disk)
    with pytest.raises(OSError) as caught:
        checkpoints.save_weights({"w": np.zeros(2, np.float32)}, tmp_path, safe_serialization=True)
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(tmp_path / "model.safetensors"))
    assert list(tmp_path.iterdir()) == []


def test_atomic_writer_on_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "config.json"
    checkpoints.write_json(target, {"old": True})
    with pytest.raises(OSError) as caught, checkpoints.atomic_file(target) as f:
        f.write("{")
        raise OSError(errno.ENOSPC, "No space left on device")  # what f.write raises on a full disk
    assert caught.value.filename == str(target)
    assert json.loads(target.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def write_csv(path: Path, texts: list[str]) -> Path:
    path.write_text("text\n" + "".join(t + "\n" for t in texts), encoding="utf-8")
    return path


def test_predict_on_a_full_disk_leaves_no_output_file(exported, tmp_path, capsys, monkeypatch):
    import predict

    data = write_csv(tmp_path / "t.csv", ["a good film", "sad"])
    out = tmp_path / "p.tsv"

    def fill_disk(records, f, *args):
        f.write("index\ttext_a\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(predict, "write_tsv", fill_disk)
    line = one_line_exit_2(capsys, lambda: predict.main(["--model_path", str(exported), "--test_file", str(data),
                                                         "--output_file", str(out)]))
    assert line == f"error: cannot write {out}: no space left on the device; free some space or write elsewhere"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


@pytest.fixture
def mounted(tmp_path):
    """A tiny tmpfs (64 KiB) where this test may mount one (root on Linux); skipped elsewhere."""
    point = tmp_path / "mnt"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True,
                          timeout=300)


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error:") or "Traceback" in line]


def test_read_only_and_full_disks_are_one_line_for_every_writer(mounted, exported, tmp_path):
    """A real read-only mount (root ignores chmod) and a real full one."""
    log = tmp_path / "run" / "train_log.jsonl"
    log.parent.mkdir()
    log.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.5}\n')
    data = write_csv(tmp_path / "t.csv", [f"a good film number {i}" for i in range(3000)])
    (mounted / "filler").write_bytes(b"\0" * 60_000)
    done = run_script("predict.py", "--model_path", str(exported), "--test_file", str(data),
                      "--output_file", str(mounted / "p.tsv"))
    assert (done.returncode, error_lines(done)) == (2, [f"error: cannot write {mounted / 'p.tsv'}: no space left "
                                                       "on the device; free some space or write elsewhere"])
    assert sorted(p.name for p in mounted.iterdir()) == ["filler"]
    (mounted / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(mounted)], check=True)
    done = run_script("plot_log.py", str(log.parent), "--output", str(mounted / "c.png"))
    assert (done.returncode, error_lines(done)) == (2, [f"error: cannot write {mounted / 'c.png'}: read-only file "
                                                       "system; choose a folder you may write to"])
    done = run_script("predict.py", "--model_path", str(exported), "--test_file", str(data),
                      "--output_file", str(mounted / "p.tsv"))
    assert (done.returncode, error_lines(done)) == (2, [f"error: cannot write {mounted / 'p.tsv'}: read-only file "
                                                       "system; choose a folder you may write to"])


# ------------------------------------------------------------------------------- rule 5: weights' values


def state_of(folder: Path) -> dict[str, np.ndarray]:
    return checkpoints.load_state(checkpoints.require_weights(folder))


@pytest.mark.parametrize("bad, safetensors, shown", [(np.nan, False, "nan"), (np.inf, True, "inf"),
                                                     (-np.inf, False, "-inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(checkpoint, tmp_path, bad, safetensors, shown):
    folder = copy_of(checkpoint, tmp_path)
    state = state_of(folder)
    weight = state["classifier.weight"].copy()
    weight[1, 2] = bad
    state["classifier.weight"] = weight
    path = checkpoints.save_weights(state, folder, safe_serialization=safetensors)
    with pytest.raises(DataError) as caught:
        modeling.load_classifier(folder)
    assert str(caught.value) == (f"{path}: tensor 'classifier.weight' holds 1 NaN or infinite values (the first at "
                                 f"[1, 2]: {shown}); the run that saved it diverged or the file is damaged: use an "
                                 "earlier checkpoint")


def test_predict_refuses_nan_classifier_weights_at_load(checkpoint, tmp_path, capsys):
    import predict

    folder = copy_of(checkpoint, tmp_path)
    state = state_of(folder)
    state["classifier.bias"] = np.full_like(state["classifier.bias"], np.nan)
    checkpoints.save_weights(state, folder)
    data = write_csv(tmp_path / "t.csv", ["a good film"])
    line = one_line_exit_2(capsys, lambda: predict.main(["--model_path", str(folder), "--test_file", str(data)],
                                                        stdin=io.StringIO(), stdout=io.StringIO()))
    assert line.startswith(f"error: {folder / 'model_state.pdparams'}: tensor 'classifier.bias' holds 3 NaN")


def test_weights_stored_as_text_are_refused(checkpoint, tmp_path):
    import paddle

    folder = copy_of(checkpoint, tmp_path)
    state = state_of(folder)
    state["classifier.bias"] = state["classifier.bias"].astype(str)
    paddle.save(state, str(folder / checkpoints.WEIGHTS_PDPARAMS))
    with pytest.raises(DataError) as caught:
        modeling.load_classifier(folder)
    assert str(caught.value) == (f"{folder / checkpoints.WEIGHTS_PDPARAMS}: tensor 'classifier.bias' holds <U32 "
                                 "values (text), not numbers: this is not a usable weights file")


def test_integer_weights_for_a_float_parameter_are_refused(checkpoint, tmp_path):
    folder = copy_of(checkpoint, tmp_path)
    state = state_of(folder)
    state["classifier.bias"] = np.zeros(3, dtype=np.int64)
    checkpoints.save_weights(state, folder)
    with pytest.raises(DataError, match="tensor 'classifier.bias' is int64, not a float type"):
        modeling.load_classifier(folder)
    # Integers stay readable where they are buffers, not weights (a Hugging Face file's position_ids).
    assert checkpoints.load_state(checkpoints.require_weights(folder))["classifier.bias"].dtype == np.int64


# ------------------------------------------------------------------------------- rule 5: vocabularies


def test_a_token_on_two_lines_is_refused_with_file_line_and_token(tmp_path):
    path = write_vocab(tmp_path, ["the", "movie", "film", "movie"])
    with pytest.raises(DataError) as caught:
        BertTokenizer.from_pretrained(tmp_path)
    assert str(caught.value) == f"{path}:20: token 'movie' is already on line 18: each token must appear once"


def longer_vocab(folder: Path, extra: int = 20) -> None:
    path = folder / "vocab.txt"
    path.write_text(path.read_text() + "".join(f"extra{i}\n" for i in range(extra)))


def test_a_vocabulary_longer_than_the_embeddings_is_refused_at_load_and_at_export(checkpoint, tmp_path):
    import export_model

    folder = copy_of(checkpoint, tmp_path)
    longer_vocab(folder)
    message = (f"{folder / 'vocab.txt'}: 106 tokens, but the model's word embeddings hold 86 (vocab_size): tokens "
               "86 to 105 have no embedding; use the vocab.txt the model was trained with")
    with pytest.raises(DataError) as caught:
        modeling.load_classifier(folder)
    assert str(caught.value) == message
    with pytest.raises(DataError) as caught:
        export_model.export_model(folder, tmp_path / "exp")
    assert str(caught.value) == message
    assert not (tmp_path / "exp").exists()


def test_an_exported_model_meets_its_vocabulary_and_config_at_load(exported, tmp_path):
    folder = copy_of(exported, tmp_path)
    assert json.loads((folder / inference.INFERENCE_CONFIG).read_text())["vocab_size"] == 86
    longer_vocab(folder)
    with pytest.raises(DataError, match=r"vocab.txt: 106 tokens, but the exported model's word embeddings hold 86"):
        inference.load_predictor(folder)


@pytest.mark.parametrize("change, message", [
    ({"num_labels": 5, "labels": list("abcde")}, "num_labels is 5, but the exported model has 3 outputs; re-export "
                                                 "the model"),
    ({"labels": ["x", "y"]}, "labels names 2 distinct outputs (x, y) but num_labels is 3; re-export the model with "
                             "export_model.py"),
    ({"max_seq_length": "long"}, "max_seq_length is 'long', not a positive number; re-export the model with "
                                 "export_model.py"),
    ({"max_position_embeddings": 500, "max_seq_length": 128}, "disagrees with the exported model: a row of 500 "
                                                              "tokens (max_position_embeddings)"),
])
def test_an_inference_config_that_disagrees_with_its_model_is_one_line(exported, tmp_path, change, message):
    folder = copy_of(exported, tmp_path)
    path = folder / inference.INFERENCE_CONFIG
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(DataError) as caught:
        inference.load_predictor(folder)
    assert str(caught.value).startswith(f"{path}: {message}")


# ------------------------------------------------------------------------------- rule 5: data and logs


def test_json_labels_1_10_and_text_1_are_one_class(tmp_path):
    rows = [{"text": "good", "label": 1}, {"text": "fine", "label": 1.0}, {"text": "fun", "label": "1"},
            {"text": "sad", "label": 0}, {"text": "odd", "label": "1.0"}, {"text": "half", "label": 0.5}]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec, data = tasks.load_task_data(tasks.DataConfig(train_file=str(path)), splits=("train",))
    assert [e.label for e in data["train"]] == ["1", "1", "1", "0", "1.0", "0.5"]
    assert spec.labels == ["0", "0.5", "1", "1.0"]
    assert datafiles.label_text(float("nan")) is None


def test_a_duplicate_key_in_a_json_record_is_refused(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "good", "label": "1"}\n{"text": "bad", "label": "1", "label": "0"}\n')
    with pytest.raises(DataError) as caught:
        tasks.load_task_data(tasks.DataConfig(train_file=str(path)), splits=("train",))
    assert str(caught.value) == f"{path}:2: the key 'label' appears twice in one object (which value is meant?)"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_glove_rows_with_nan_or_inf_are_refused_with_file_and_line(tmp_path, value):
    path = tmp_path / "g.txt"
    path.write_text(f"the 0.1 0.2\ncat 0.3 {value}\ndog 0.3 0.4\n")
    with pytest.raises(DataError) as caught:
        load_glove(path, verbose=False)
    assert str(caught.value) == (f"{path}:2: word 'cat': its vector holds NaN or inf; word vectors must be finite "
                                 "numbers (a NaN vector would be every word's nearest neighbour)")


def test_plot_log_of_a_binary_file_is_one_line(tmp_path, capsys):
    import plot_log

    path = tmp_path / "train_log.jsonl"
    path.write_bytes(b'{"step": 1, "loss": 1.0}\n\xd2\x00\xff binary\n')
    with pytest.raises(DataError) as caught:
        runlog.read_curves(path)
    assert str(caught.value) == f"{path}:2: not UTF-8 text (byte 0xd2); is this a train_log.jsonl?"
    line = one_line_exit_2(capsys, lambda: plot_log.main([str(path), "--output", str(tmp_path / "c.png")]))
    assert line == f"error: {caught.value}"


# ------------------------------------------------------------------------------- rule 6: caches by content


def test_glove_cache_notices_a_file_replaced_with_the_same_size_and_time(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("cat 1.0 0.0\ndog 0.9 0.1\ncar 0.0 1.0\n")
    before = path.stat()
    assert load_glove(path, verbose=False).nearest(["cat"], 1) == [("dog",)]
    path.write_text("cat 0.0 1.0\ndog 0.9 0.1\ncar 0.0 1.0\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert load_glove(path, verbose=False).nearest(["cat"], 1) == [("car",)]


# ------------------------------------------------------------------------------- rule 7: bounded memory


def pickle_bomb(path: Path, data_bytes: int, copies: int) -> None:
    """A paddle.save-like state dict of `copies` arrays whose data is one memoized string, each made into
    bytes by _codecs.encode: the file holds the data once, loading it would build it `copies` times."""
    P = pickle
    out = bytearray(b"\x80\x02" + P.EMPTY_DICT + P.MARK)
    dtype_state = pickletools.optimize(pickle.dumps(np.dtype("u1").__reduce__()[2], protocol=2))[2:-1]
    for i in range(copies):
        key = f"w{i}".encode()
        out += P.SHORT_BINUNICODE + bytes([len(key)]) + key
        first = i == 0
        out += (P.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n" + P.BINPUT + b"\0" + P.GLOBAL + b"numpy\nndarray\n"
                + P.BINPUT + b"\1") if first else (P.BINGET + b"\0" + P.BINGET + b"\1")
        out += P.BININT1 + b"\0" + P.TUPLE1 + P.SHORT_BINBYTES + b"\1b" + P.TUPLE3 + P.REDUCE
        out += P.MARK + P.BININT1 + b"\1" + P.BININT + struct.pack("<i", data_bytes) + P.TUPLE1
        out += (P.GLOBAL + b"numpy\ndtype\n" + P.SHORT_BINUNICODE + b"\2u1" + P.NEWFALSE + P.NEWTRUE + P.TUPLE3
                + P.REDUCE + dtype_state + P.BUILD + P.BINPUT + b"\2") if first else P.BINGET + b"\2"
        out += P.NEWFALSE
        out += (P.GLOBAL + b"_codecs\nencode\n" + P.BINPUT + b"\4" + P.BINUNICODE + struct.pack("<I", data_bytes)
                + b"\7" * data_bytes + P.BINPUT + b"\3") if first else P.BINGET + b"\4" + P.BINGET + b"\3"
        out += P.SHORT_BINUNICODE + b"\6latin1" + P.TUPLE2 + P.REDUCE + P.TUPLE + P.BUILD
    path.write_bytes(bytes(out + P.SETITEMS + P.STOP))


def test_a_pickle_that_would_expand_past_the_bound_is_refused_before_allocating(tmp_path):
    small = tmp_path / "small.pdparams"
    pickle_bomb(small, 1000, 5)  # the same construction, within the bound: it loads
    state = safe_pickle.load(small)
    assert sorted(state) == [f"w{i}" for i in range(5)] and state["w4"].tolist() == [7] * 1000
    bomb = tmp_path / "bomb.pdparams"
    pickle_bomb(bomb, 200_000, 2_000)  # a file of 0.3 MB that would build 400 MB (98 GiB at full scale)
    with pytest.raises(DataError) as caught:
        safe_pickle.load(bomb)
    size = bomb.stat().st_size
    assert str(caught.value) == (f"{bomb}: refused to load: its arrays would take more than "
                                 f"{(4 * size + (64 << 20)) / 2**20:.0f} MB of memory, from a file of "
                                 f"{size} bytes (the bound is 4 times the file's size plus 64 MB); it is corrupt "
                                 "or made to exhaust memory")


class CountingTokenizer:
    """Wraps the `tokenizers` object and records how many characters each call tokenized."""

    def __init__(self, inner):
        self.inner, self.lengths = inner, []

    def encode_batch(self, texts, **kwargs):
        self.lengths += [len(t) for t in texts]
        return self.inner.encode_batch(texts, **kwargs)

    def encode(self, text, **kwargs):
        self.lengths.append(len(text))
        return self.inner.encode(text, **kwargs)


def test_a_long_field_is_cut_before_tokenizing_and_keeps_every_token(vocab_dir):
    tok = BertTokenizer.from_pretrained(vocab_dir)
    whole = BertTokenizer.from_pretrained(vocab_dir)
    counting = CountingTokenizer(tok._tk)
    tok._tk = counting
    field = "good film " * 550_000  # 5.5 MB
    assert tok([field], max_seq_length=18) == whole([field[:200]], max_seq_length=18)
    assert max(counting.lengths) <= 18 * tokenization.HEAD_CHARS_PER_TOKEN
    # Texts whose tokens come late (a long run of spaces, a word past WordPiece's 100 characters, CJK without
    # spaces, a [MASK] at the cut) give exactly the tokens of the whole text, singles and pairs.
    hard = [" " * 5000 + "good film " * 50, "x" * 3000 + " fun" * 40, "中文" * 2000, "the [MASK] " * 300,
            ("good\t" * 7) + "a" * 95 + " sad" * 30]
    for text in hard:
        for other in hard[:2]:
            for length in (8, 20, 64):
                assert tok([text], [other], max_seq_length=length) == whole._call_whole([text], [other], length)
                assert tok([text], max_seq_length=length) == whole._call_whole([text], None, length)


@pytest.fixture(autouse=True)
def _whole_tokenization(monkeypatch):
    """BertTokenizer._call_whole: the tokenizer as it was before heads, the reference for exactness."""
    def call_whole(self, texts_a, texts_b, length):
        monkeypatch.setattr(tokenization, "HEAD_CHARS_PER_TOKEN", 10**12)
        try:
            return self(texts_a, texts_b, max_seq_length=length)
        finally:
            monkeypatch.setattr(tokenization, "HEAD_CHARS_PER_TOKEN", 10)

    monkeypatch.setattr(BertTokenizer, "_call_whole", call_whole, raising=False)
