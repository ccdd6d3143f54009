"""From nothing: PaddleNLP names, Hugging Face names and GLUE/CLUE tasks fetched on first use
(tinybert/download.py, models/named.py, models/convert.py's from_hub, data/sources.py).

Every download here goes to a server this test starts on 127.0.0.1 (never another address): PaddleNLP's
host through TINYBERT_MIRROR, Hugging Face's through HF_ENDPOINT. It serves PaddleNLP-style archives and
files built here from ../shared/glue (tests needing those skip without them) and from tiny models. The
archives built here are not PaddleNLP's byte for byte, so their own md5 replaces the published one in the
table; the files inside are checked against PaddleNLP's published md5, unchanged.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import paddle
import pytest
from safetensors.numpy import save_file

from builders import (DATA, GLUE_DIR, PADDLENLP_PYTHON, PUNCTUATION, ROOT, SPECIAL_TOKENS, TINY_WORDS,
                      write_vocab)
from builders import HF_CFG, hf_state
from tinybert import download, errors
from tinybert.data import sources, tasks
from tinybert.models import checkpoints, configs, modeling, named

COMMIT = "0123456789abcdef0123456789abcdef01234567"
# vocab_size: the tokens of builders.write_vocab, so the served vocab.txt fits the embeddings
TINY = dict(vocab_size=len(SPECIAL_TOKENS) + len(PUNCTUATION) + len(TINY_WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
            max_position_embeddings=40)
WEIGHTS_PATH = "/paddlenlp/models/transformers/tinybert/tinybert-4l-312d.pdparams"
VOCAB_PATH = "/paddlenlp/models/transformers/tinybert/tinybert-4l-312d-vocab.txt"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ---- the server ---------------------------------------------------------------------------------------


class Server:
    """Files by path, with Range support; counts GETs per path; can drop a file's first connection midway,
    serve slowly, and stand in for the Hugging Face endpoints hf_hub_download calls (HEAD and GET on
    /ORG/NAME/resolve/REVISION/FILE, with X-Repo-Commit, ETag and X-Error-Code on a 404)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.repos: dict[str, dict[str, bytes]] = {}
        self.gets: dict[str, int] = {}
        self.ranges: list[tuple[str, str | None]] = []
        self.drop_after: dict[str, int] = {}  # path -> bytes sent before the first connection is cut
        self.delay = 0.0                       # seconds per 4 KiB sent
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                server.answer(self, head=True)

            def do_GET(self) -> None:
                server.answer(self, head=False)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, h: http.server.BaseHTTPRequestHandler, head: bool) -> None:
        path = h.path.split("?")[0]
        data, extra = self.lookup(path)
        if not head:
            self.gets[path] = self.gets.get(path, 0) + 1
            self.ranges.append((path, h.headers.get("Range")))
        if data is None:
            h.send_response(404)
            for k, v in extra.items():
                h.send_header(k, v)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        start = 0
        rng = h.headers.get("Range")
        if rng and not head:
            start = int(rng.split("=")[1].split("-")[0])
        h.send_response(206 if start else 200)
        for k, v in extra.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data) - start))
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if head:
            return
        stop = len(data)
        if path in self.drop_after and self.gets[path] == 1:
            stop = self.drop_after[path]
        for i in range(start, stop, 4096):
            h.wfile.write(data[i:min(i + 4096, stop)])
            h.wfile.flush()
            time.sleep(self.delay)
        if stop < len(data):
            h.close_connection = True
            h.connection.shutdown(2)  # the connection drops mid-file

    def lookup(self, path: str) -> tuple[bytes | None, dict[str, str]]:
        if path in self.files:
            return self.files[path], {}
        parts = path.strip("/").split("/")
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
            if repo not in self.repos:
                return None, {"X-Error-Code": "RepoNotFound"}
            data = self.repos[repo].get(filename)
            if data is None:
                return None, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT}
            return data, {"X-Repo-Commit": COMMIT, "ETag": f'"{md5(data)}"'}
        return None, {}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path, monkeypatch):
    """The server, with this process online toward it only: mirror and endpoint on 127.0.0.1, caches in tmp."""
    s = Server()
    monkeypatch.delenv("TINYBERT_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # read once, at its import
    monkeypatch.setenv("TINYBERT_MIRROR", s.url)
    monkeypatch.setenv("HF_ENDPOINT", s.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path / "ppnlp"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield s
    s.close()


def leftovers(folder: Path) -> list[str]:
    """Temporary files a download or unpack may leave (the lock files stay by design)."""
    return sorted(p.name for p in folder.rglob(".*") if not p.name.endswith(".lock"))


# ---- PaddleNLP names ----------------------------------------------------------------------------------


def tiny_named_model(tmp_path, monkeypatch, server) -> modeling.TinyBertModel:
    """tinybert-4l-312d as a tiny model: its weights and vocabulary served where PaddleNLP's table says."""
    monkeypatch.setitem(configs.BUILTIN_CONFIGS, "tinybert-4l-312d", TINY)
    paddle.seed(3)
    model = modeling.TinyBertModel(modeling.BertConfig(**TINY))
    model.eval()
    model.save_pretrained(tmp_path / "made")
    server.files[WEIGHTS_PATH] = (tmp_path / "made" / "model_state.pdparams").read_bytes()
    server.files[VOCAB_PATH] = write_vocab(tmp_path / "vocab").read_bytes()
    return model


def hidden(model) -> np.ndarray:
    ids = paddle.to_tensor([[2, 10, 11, 3, 0]])
    return model(ids, attention_mask=paddle.to_tensor([[1, 1, 1, 1, 0]])).last_hidden_state.numpy()


def test_named_model_downloads_into_paddlenlps_layout_and_resumes(tmp_path, monkeypatch, server):
    model = tiny_named_model(tmp_path, monkeypatch, server)
    size = len(server.files[WEIGHTS_PATH])
    server.drop_after[WEIGHTS_PATH] = size // 2  # the first connection drops mid-file
    server.delay = 0.0
    loaded = modeling.TinyBertModel.from_pretrained("tinybert-4l-312d")
    np.testing.assert_array_equal(hidden(loaded), hidden(model))
    folder = tmp_path / "ppnlp" / "models" / "tinybert-4l-312d"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "model_state.pdparams", "tinybert-4l-312d-vocab.txt"]  # PaddleNLP 2.8's names
    # resumed where it stopped: the second request asked for the rest only
    weights = [r for p, r in server.ranges if p == WEIGHTS_PATH]
    assert weights[0] is None and weights[1] == f"bytes={size // 2}-" and len(weights) == 2
    assert leftovers(folder.parent) == []
    # found locally from now on, offline too: no request
    monkeypatch.setenv("TINYBERT_OFFLINE", "1")
    assert checkpoints.resolve_model_dir("tinybert-4l-312d") == folder
    assert server.gets[WEIGHTS_PATH] == 2 and server.gets[VOCAB_PATH] == 1


def test_a_dropped_download_is_kept_and_resumed_by_the_next_run(tmp_path, monkeypatch, server):
    tiny_named_model(tmp_path, monkeypatch, server)
    monkeypatch.setattr(download, "ATTEMPTS", 1)
    server.drop_after[WEIGHTS_PATH] = 1000
    with pytest.raises(errors.UserError) as e:
        checkpoints.resolve_model_dir("tinybert-4l-312d")
    msg = str(e.value)
    assert "\n" not in msg and "the connection dropped" in msg and "run again to resume" in msg
    folder = tmp_path / "ppnlp" / "models" / "tinybert-4l-312d"
    assert (folder / ".model_state.pdparams.part").stat().st_size == 1000
    assert not (folder / "model_state.pdparams").exists()  # an interrupted download never looks finished
    assert checkpoints.resolve_model_dir("tinybert-4l-312d") == folder
    assert [r for p, r in server.ranges if p == WEIGHTS_PATH] == [None, "bytes=1000-"]


def test_offline_and_unreachable_fail_at_once_with_one_line(tmp_path, monkeypatch, server):
    tiny_named_model(tmp_path, monkeypatch, server)
    target = tmp_path / "ppnlp" / "models" / "tinybert-4l-312d" / "model_state.pdparams"
    monkeypatch.setenv("TINYBERT_OFFLINE", "1")
    with pytest.raises(errors.UserError) as e:
        checkpoints.resolve_model_dir("tinybert-4l-312d")
    assert str(e.value) == (
        f"the weights of tinybert-4l-312d not found locally at {target}, and TINYBERT_OFFLINE=1 forbids "
        f"downloading it from {server.url}{WEIGHTS_PATH}; to work offline put that file at {target}")
    assert server.gets == {}
    monkeypatch.delenv("TINYBERT_OFFLINE")
    closed = Server()
    closed.close()  # a port nothing listens on
    monkeypatch.setenv("TINYBERT_MIRROR", closed.url)
    started = time.monotonic()
    with pytest.raises(errors.UserError) as e:
        checkpoints.resolve_model_dir("tinybert-4l-312d")
    msg = str(e.value)
    assert "\n" not in msg and time.monotonic() - started < 10
    assert msg.startswith(f"the weights of tinybert-4l-312d not found locally at {target}, and "
                          f"{closed.url}{WEIGHTS_PATH} failed (") and f"put that file at {target}" in msg


def test_mirror_and_https_addresses(monkeypatch):
    monkeypatch.delenv("TINYBERT_MIRROR", raising=False)
    url = named.MODEL_FILES["tinybert-4l-312d"].weights
    assert url.startswith("http://bj.bcebos.com/")  # PaddleNLP's table says http ...
    assert download.address(url) == "https://" + url[len("http://"):]  # ... fetched over https
    qqp = "https://dataset.bj.bcebos.com/glue/QQP.zip"
    assert download.address(qqp) == qqp
    monkeypatch.setenv("TINYBERT_MIRROR", "https://mirror.example/base/")
    assert download.address(url) == "https://mirror.example/base" + WEIGHTS_PATH


def test_local_folder_wins_over_a_name(tmp_path, monkeypatch, server):
    tiny_named_model(tmp_path, monkeypatch, server)
    monkeypatch.chdir(tmp_path)
    paddle.seed(5)
    own = modeling.TinyBertModel(modeling.BertConfig(**TINY))
    own.save_pretrained(tmp_path / "tinybert-4l-312d")
    write_vocab(tmp_path / "tinybert-4l-312d")
    (tmp_path / "test-org").mkdir()
    own.save_pretrained(tmp_path / "test-org" / "tiny-bert")
    assert checkpoints.resolve_model_dir("tinybert-4l-312d") == Path("tinybert-4l-312d")
    assert checkpoints.resolve_model_dir("test-org/tiny-bert") == Path("test-org/tiny-bert")
    own.eval()
    np.testing.assert_array_equal(hidden(modeling.TinyBertModel.from_pretrained("tinybert-4l-312d")), hidden(own))
    assert server.gets == {}  # nothing downloaded


READY = """
import sys, time
from pathlib import Path
from tinybert.models import checkpoints
Path(sys.argv[1]).touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.02)
print(checkpoints.resolve_model_dir("tinybert-4l-312d"))
"""


def test_two_processes_download_a_name_once(tmp_path, monkeypatch, server):
    """As under paddle.distributed.launch: both ask at the same moment; one downloads, the other waits."""
    tiny_named_model(tmp_path, monkeypatch, server)
    server.delay = 0.02  # slow enough that the second asks while the first is downloading
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", READY, str(tmp_path / f"ready{i}"), str(go)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    folder = tmp_path / "ppnlp" / "models" / "tinybert-4l-312d"
    assert [out.strip() for out, _ in outs] == [str(folder)] * 2
    assert server.gets == {WEIGHTS_PATH: 1, VOCAB_PATH: 1}
    assert (folder / "model_state.pdparams").read_bytes() == server.files[WEIGHTS_PATH]


# ---- GLUE and CLUE ------------------------------------------------------------------------------------

needs_glue = pytest.mark.skipif(not GLUE_DIR.is_dir(), reason=f"real GLUE data not found at {GLUE_DIR}")


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def serve_glue_archive(server, monkeypatch, task: str, corrupt: str | None = None) -> bytes:
    """TASK's PaddleNLP archive built from ../shared/glue (one file's bytes changed when `corrupt`)."""
    archive = sources.GLUE_ARCHIVES[task]
    files = {name: (GLUE_DIR / name).read_bytes() for name in archive.files}
    if corrupt:
        files[corrupt] = files[corrupt] + b"one more line\n"
    data = zip_of(files)
    server.files[archive.url.split("bcebos.com")[1]] = data
    monkeypatch.setitem(sources.GLUE_ARCHIVES, task, sources.Archive(archive.url, md5(data), archive.files))
    return data


@needs_glue
def test_glue_task_downloads_unpacks_and_checks_every_file(tmp_path, monkeypatch, server):
    serve_glue_archive(server, monkeypatch, "CoLA")
    spec, data = tasks.load_task_data(tasks.DataConfig(task_name="CoLA"), splits=("train", "dev", "test"))
    glue = tmp_path / "ppnlp" / "datasets" / "Glue"
    for name, published in sources.GLUE_ARCHIVES["CoLA"].files.items():
        assert download.md5_of(glue / name) == published  # PaddleNLP's published md5, unchanged
    assert (len(data["train"]), len(data["dev"]), len(data["test"])) == (8551, 1043, 1063)
    assert (glue / "CoLA.zip").is_file() and leftovers(glue) == []  # the archive stays, as PaddleNLP keeps it
    assert server.gets == {"/dataset/glue/CoLA.zip": 1}
    tasks.load_task_data(tasks.DataConfig(task_name="CoLA"))  # found in the cache now
    assert server.gets == {"/dataset/glue/CoLA.zip": 1}


def test_a_corrupt_download_is_refused_and_removed(tmp_path, monkeypatch, server):
    archive = sources.GLUE_ARCHIVES["WNLI"]
    server.files["/dataset/glue/WNLI.zip"] = b"not the archive"
    with pytest.raises(errors.UserError) as e:
        tasks.load_task_data(tasks.DataConfig(task_name="WNLI"))
    glue = tmp_path / "ppnlp" / "datasets" / "Glue"
    msg = str(e.value)
    assert "\n" not in msg and f"{glue / 'WNLI.zip'}: downloaded from {server.url}/dataset/glue/WNLI.zip" in msg
    assert f"its md5 is {md5(b'not the archive')}, not the published {archive.md5}" in msg
    assert "the download was corrupt and is deleted" in msg
    assert [p.name for p in glue.iterdir() if not p.name.endswith(".lock")] == []


@needs_glue
def test_a_file_unlike_paddlenlps_is_refused_and_nothing_is_put_in_place(tmp_path, monkeypatch, server):
    serve_glue_archive(server, monkeypatch, "RTE", corrupt="RTE/dev.tsv")
    with pytest.raises(errors.UserError) as e:
        tasks.load_task_data(tasks.DataConfig(task_name="RTE"))
    glue = tmp_path / "ppnlp" / "datasets" / "Glue"
    assert "\n" not in str(e.value) and f"{glue / 'RTE.zip'}: its RTE/dev.tsv has md5" in str(e.value)
    assert "not PaddleNLP's published 973cb4178d4534cf745a01c309d4a66c" in str(e.value)
    assert [p.name for p in glue.iterdir() if not p.name.endswith(".lock")] == []  # archive deleted, no RTE/


def test_clue_task_unpacks_into_paddlenlps_clue_folder(tmp_path, monkeypatch, server):
    rows = {"train": [("a", "b", "1"), ("c", "d", "0")], "dev": [("e", "f", "0")], "test": [("g", "h", None)]}
    files = {}
    for split, split_rows in rows.items():
        lines = [json.dumps({"sentence1": a, "sentence2": b, **({"label": y} if y else {}), "id": i},
                            ensure_ascii=False) for i, (a, b, y) in enumerate(split_rows)]
        files[f"afqmc_public/{split}.json"] = ("\n".join(lines) + "\n").encode()
    data = zip_of(files)
    url = sources.CLUE_ARCHIVES["AFQMC"].url
    server.files[url.split("bcebos.com")[1]] = data
    monkeypatch.setitem(sources.CLUE_ARCHIVES, "AFQMC",
                        sources.Archive(url, md5(data), {name: md5(b) for name, b in files.items()}))
    spec, got = tasks.load_task_data(tasks.DataConfig(task_name="AFQMC"), splits=("train", "dev", "test"))
    assert [(e.text_a, e.text_b, e.label) for e in got["train"]] == [("a", "b", "1"), ("c", "d", "0")]
    clue = tmp_path / "ppnlp" / "datasets" / "Clue"
    assert sorted(p.name for p in (clue / "afqmc_public").iterdir()) == ["dev.json", "test.json", "train.json"]


@needs_glue
def test_mrpc_is_built_from_microsofts_files_with_paddlenlps_checksums(tmp_path, monkeypatch, server):
    """Microsoft's files are made here from ../shared/glue/MRPC (the originals are not available): the
    training file is train.tsv's header and rows with dev.tsv's rows slotted in after every ninth row (the
    split keeps each file's order), the dev id list is dev.tsv's (#1 ID, #2 ID) pairs, and the test file is
    test.tsv with its index column replaced by a Quality of 0 (PaddleNLP drops that column); CRLF line ends,
    as Microsoft's files have."""
    shared = GLUE_DIR / "MRPC"
    train = shared.joinpath("train.tsv").read_text(encoding="utf-8").splitlines()
    dev = shared.joinpath("dev.tsv").read_text(encoding="utf-8").splitlines()
    test = shared.joinpath("test.tsv").read_text(encoding="utf-8").splitlines()
    mixed, dev_rows = [train[0]], dev[1:]
    for i, row in enumerate(train[1:]):
        mixed.append(row)
        if i % 9 == 8 and dev_rows:
            mixed.append(dev_rows.pop(0))
    mixed += dev_rows
    ms_test = ["\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"] + ["0\t" + r.split("\t", 1)[1] for r in test[1:]]
    made = {"train_data": "\r\n".join(mixed) + "\r\n", "test_data": "\r\n".join(ms_test) + "\r\n",
            "dev_id": "".join("\t".join(r.split("\t")[1:3]) + "\r\n" for r in dev[1:])}
    for kind, text in made.items():
        source = sources.MRPC_SOURCES[kind]
        server.files[source.url.split("bcebos.com")[1]] = text.encode("utf-8")
        monkeypatch.setitem(sources.MRPC_SOURCES, kind, sources.Source(source.url, md5(text.encode("utf-8"))))
    spec, data = tasks.load_task_data(tasks.DataConfig(task_name="MRPC"), splits=("train", "dev", "test"))
    folder = tmp_path / "ppnlp" / "datasets" / "Glue" / "MRPC"
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        assert download.md5_of(folder / name) == sources.MRPC_FILES[f"MRPC/{name}"]  # PaddleNLP's checksums
        assert (folder / name).read_bytes() == (shared / name).read_bytes()
    assert (len(data["train"]), len(data["dev"]), len(data["test"])) == (3668, 408, 1725)


# ---- Hugging Face names -------------------------------------------------------------------------------


def hf_repo_files(weights_name: str, weights: bytes) -> dict[str, bytes]:
    return {"config.json": json.dumps({**HF_CFG, "num_labels": 2}).encode(), weights_name: weights,
            "vocab.txt": write_vocab_bytes(), "tokenizer_config.json": b'{"do_lower_case": true}'}


def write_vocab_bytes() -> bytes:
    words = [f"w{i}" for i in range(HF_CFG["vocab_size"] - 16)]
    return ("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *".,!?'\"-:;()", *words]) + "\n").encode()


def logits(model) -> np.ndarray:
    ids = paddle.to_tensor([[2, 20, 21, 3, 30, 3, 0]])
    return model(ids, paddle.to_tensor([[0, 0, 0, 0, 1, 1, 0]]),
                 paddle.to_tensor([[1, 1, 1, 1, 1, 1, 0]])).logits.numpy()


def test_hugging_face_names_convert_safetensors_and_pytorch_bin_alike(tmp_path, server, monkeypatch):
    """The same weights as model.safetensors and as pytorch_model.bin (tests/data/make_pytorch_model_bin.py,
    made once with torch, read here without it): identical logits, converted once, then found offline."""
    st = tmp_path / "w.safetensors"
    save_file(hf_state(HF_CFG, seed=7, classifier=2), str(st))
    server.repos["test-org/tiny-st"] = hf_repo_files("model.safetensors", st.read_bytes())
    server.repos["test-org/tiny-pt"] = hf_repo_files("pytorch_model.bin",
                                                     (DATA / "hf_tiny_bert" / "pytorch_model.bin").read_bytes())
    from_st = modeling.load_classifier("test-org/tiny-st")
    from_pt = modeling.load_classifier("test-org/tiny-pt")
    np.testing.assert_array_equal(logits(from_pt), logits(from_st))
    converted = tmp_path / "hf" / "models--test-org--tiny-pt" / "tinybert" / COMMIT  # beside the download
    assert checkpoints.resolve_model_dir("test-org/tiny-pt") == converted
    assert (converted / "model.safetensors").is_file() and (converted / "vocab.txt").is_file()
    assert server.gets.get("/test-org/tiny-pt/resolve/main/pytorch_model.bin") == 1
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = dict(server.gets)
    assert checkpoints.resolve_model_dir("test-org/tiny-pt") == converted
    assert server.gets == before
    with pytest.raises(errors.UserError) as e:
        checkpoints.resolve_model_dir("test-org/never-fetched")
    assert "\n" not in str(e.value) and "HF_HUB_OFFLINE=1 forbids downloading it" in str(e.value)


def evil_pytorch_bin(marker: Path) -> bytes:
    """A pytorch_model.bin whose pickle calls os.system (written without torch: the opcodes by hand)."""
    command = f"touch {marker}".encode()
    payload = (b"\x80\x02cposix\nsystem\nq\x00X" + len(command).to_bytes(4, "little") + command
               + b"\x85R.")
    return zip_of({"archive/data.pkl": payload, "archive/version": b"3\n"})


def test_a_pytorch_bin_that_would_run_code_is_refused_with_one_line(tmp_path, server):
    marker = tmp_path / "ran"
    server.repos["test-org/evil"] = hf_repo_files("pytorch_model.bin", evil_pytorch_bin(marker))
    with pytest.raises(errors.DataError) as e:
        modeling.load_classifier("test-org/evil")
    msg = str(e.value)
    assert "\n" not in msg and msg.endswith("pytorch_model.bin: refused to load: it would call posix.system "
                                            "(a weights file holds only tensors and their storages); it is not "
                                            "a weights file or was tampered with; load only files you trust")
    assert not marker.exists()


# ---- the tables are PaddleNLP 2.8.1's -----------------------------------------------------------------

DUMP = """
import json
from paddlenlp.datasets.clue import Clue
from paddlenlp.datasets.glue import Glue
from paddlenlp.transformers import BertModel, BertTokenizer, ErnieModel, ErnieTokenizer, TinyBertModel, TinyBertTokenizer
from importlib.metadata import version
models = {}
for m, t in ((BertModel, BertTokenizer), (TinyBertModel, TinyBertTokenizer), (ErnieModel, ErnieTokenizer)):
    for name, url in m.pretrained_resource_files_map["model_state"].items():
        models.setdefault(name, {})["weights"] = url
    for name, url in t.pretrained_resource_files_map["vocab_file"].items():
        models.setdefault(name, {})["vocab"] = url
    for name, conf in m.config_class.pretrained_init_configuration.items():
        models.setdefault(name, {})["config"] = m.config_class(**conf).to_dict()  # its defaults filled in
print(json.dumps({"version": version("paddlenlp"), "models": models, "glue": Glue.BUILDER_CONFIGS,
                  "clue": Clue.BUILDER_CONFIGS}))
"""


@pytest.mark.skipif(not PADDLENLP_PYTHON.exists(), reason="no PaddleNLP 2.8.1 scratch venv (tests/data/make_*.py)")
def test_tables_equal_paddlenlp_2_8_1():
    out = subprocess.run([str(PADDLENLP_PYTHON), "-c", DUMP], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr[-2000:]
    theirs = json.loads(out.stdout.strip().splitlines()[-1])
    assert theirs["version"] == named.PADDLENLP_VERSION == sources.PADDLENLP_VERSION == "2.8.1"
    for name, files in named.MODEL_FILES.items():
        assert (files.weights, files.vocab) == (theirs["models"][name]["weights"], theirs["models"][name]["vocab"])
        ours = configs.builtin_config(name)
        assert {k: theirs["models"][name]["config"][k] for k in ours} == ours, name
    glue_keys = {"CoLA": "cola", "SST-2": "sst-2", "STS-B": "sts-b", "QQP": "qqp", "MNLI": "mnli", "QNLI": "qnli",
                 "RTE": "rte", "WNLI": "wnli"}
    assert sorted(glue_keys.values()) == sorted(k for k in theirs["glue"] if k != "mrpc")
    for task, key in glue_keys.items():
        c, archive = theirs["glue"][key], sources.GLUE_ARCHIVES[task]
        assert (archive.url, archive.md5) == (c["url"], c["md5"])
        assert archive.files == {v[0]: v[1] for v in c["splits"].values()}
    for task, archive in sources.CLUE_ARCHIVES.items():
        c = theirs["clue"][task.lower()]
        assert (archive.url, archive.md5) == (c["url"], c["md5"])
        assert archive.files == {v[0]: v[1] for v in c["splits"].values()}
    assert sorted(t.lower() for t in sources.CLUE_ARCHIVES) == sorted(theirs["clue"])
    mrpc = theirs["glue"]["mrpc"]
    assert {k: (s.url, s.md5) for k, s in sources.MRPC_SOURCES.items()} == {
        k: (mrpc["url"][k], mrpc["md5"][k]) for k in mrpc["url"]}
    assert sources.MRPC_FILES == {v[0]: v[1] for v in mrpc["splits"].values()}
    # every GLUE and CLUE task of tasks.py has its source
    assert set(tasks.GLUE_TASKS) == set(sources.GLUE_ARCHIVES) | {"MRPC"}
    assert set(tasks.CLUE_TASKS) == set(sources.CLUE_ARCHIVES)
