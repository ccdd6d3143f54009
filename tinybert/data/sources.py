"""Where GLUE's and CLUE's files come from when a --task_name is given without --glue_dir/--data_dir and
PaddleNLP's dataset cache lacks them: PaddleNLP's own archives and addresses, unpacked into PaddleNLP's
cache layout as PaddleNLP does, so the two share one copy:

    $PPNLP_HOME/datasets/Glue/SST.zip, Glue/SST-2/{train,dev,test}.tsv      (MNLI: dev_matched.tsv, ...)
    $PPNLP_HOME/datasets/Clue/afqmc_public.zip, Clue/afqmc_public/{train,dev,test}.json

Every file is checked against the md5 PaddleNLP publishes for it. MRPC has no archive: PaddleNLP builds
it from Microsoft's msr_paraphrase_train.txt / msr_paraphrase_test.txt and GLUE's dev id list, and so does
build_mrpc() here, giving files with PaddleNLP's checksums.

The tables are PaddleNLP's (paddlenlp/datasets/glue.py and clue.py, Glue/Clue.BUILDER_CONFIGS), copied as
they stand; tests/test_fetch.py compares them with PaddleNLP's classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinybert import download
from tinybert.errors import DataError
from tinybert.models import checkpoints

PADDLENLP_VERSION = "2.8.1"  # the tables below are this version's


@dataclass(frozen=True)
class Archive:
    url: str
    md5: str                # of the archive
    files: dict[str, str]   # each file it unpacks to (relative to Glue/ or Clue/) -> its md5


@dataclass(frozen=True)
class Source:
    url: str
    md5: str


GLUE_ARCHIVES: dict[str, Archive] = {
    "CoLA": Archive("https://bj.bcebos.com/dataset/glue/CoLA.zip", "b178a7c2f397b0433c39c7caf50a3543", {
        "CoLA/train.tsv": "c79d4693b8681800338aa044bf9e797b",
        "CoLA/dev.tsv": "c5475ccefc9e7ca0917294b8bbda783c",
        "CoLA/test.tsv": "d8721b7dedda0dcca73cebb2a9f4259f",
    }),
    "SST-2": Archive("https://bj.bcebos.com/dataset/glue/SST.zip", "9f81648d4199384278b86e315dac217c", {
        "SST-2/train.tsv": "da409a0a939379ed32a470bc0f7fe99a",
        "SST-2/dev.tsv": "268856b487b2a31a28c0a93daaff7288",
        "SST-2/test.tsv": "3230e4efec76488b87877a56ae49675a",
    }),
    "STS-B": Archive("https://bj.bcebos.com/dataset/glue/STS.zip", "d573676be38f1a075a5702b90ceab3de", {
        "STS-B/train.tsv": "4f7a86dde15fe4832c18e5b970998672",
        "STS-B/dev.tsv": "5f4d6b0d2a5f268b1b56db773ab2f1fe",
        "STS-B/test.tsv": "339b5817e414d19d9bb5f593dd94249c",
    }),
    "QQP": Archive("https://dataset.bj.bcebos.com/glue/QQP.zip", "884bf26e39c783d757acc510a2a516ef", {
        "QQP/train.tsv": "e003db73d277d38bbd83a2ef15beb442",
        "QQP/dev.tsv": "cff6a448d1580132367c22fc449ec214",
        "QQP/test.tsv": "73de726db186b1b08f071364b2bb96d0",
    }),
    "MNLI": Archive("https://bj.bcebos.com/dataset/glue/MNLI.zip", "e343b4bdf53f927436d0792203b9b9ff", {
        "MNLI/train.tsv": "220192295e23b6705f3545168272c740",
        "MNLI/dev_matched.tsv": "c3fa2817007f4cdf1a03663611a8ad23",
        "MNLI/dev_mismatched.tsv": "b219e6fe74e4aa779e2f417ffe713053",
        "MNLI/test_matched.tsv": "33ea0389aedda8a43dabc9b3579684d9",
        "MNLI/test_mismatched.tsv": "7d2f60a73d54f30d8a65e474b615aeb6",
    }),
    "QNLI": Archive("https://bj.bcebos.com/dataset/glue/QNLI.zip", "b4efd6554440de1712e9b54e14760e82", {
        "QNLI/train.tsv": "5e6063f407b08d1f7c7074d049ace94a",
        "QNLI/dev.tsv": "1e81e211959605f144ba6c0ad7dc948b",
        "QNLI/test.tsv": "f2a29f83f3fe1a9c049777822b7fa8b0",
    }),
    "RTE": Archive("https://bj.bcebos.com/dataset/glue/RTE.zip", "bef554d0cafd4ab6743488101c638539", {
        "RTE/train.tsv": "d2844f558d111a16503144bb37a8165f",
        "RTE/dev.tsv": "973cb4178d4534cf745a01c309d4a66c",
        "RTE/test.tsv": "6041008f3f3e48704f57ce1b88ad2e74",
    }),
    "WNLI": Archive("https://bj.bcebos.com/dataset/glue/WNLI.zip", "a1b4bd2861017d302d29e42139657a42", {
        "WNLI/train.tsv": "5cdc5a87b7be0c87a6363fa6a5481fc1",
        "WNLI/dev.tsv": "a79a6dd5d71287bcad6824c892e517ee",
        "WNLI/test.tsv": "a18789ba4f60f6fdc8cb4237e4ba24b5",
    }),
}

CLUE_ARCHIVES: dict[str, Archive] = {
    "AFQMC": Archive("https://bj.bcebos.com/paddlenlp/datasets/afqmc_public.zip", "3377b559bb4e61d03a35282550902ca0", {
        "afqmc_public/train.json": "319cf775353af9473140abca4052b89a",
        "afqmc_public/dev.json": "307154b59cb6c3e68a0f39c310bbd364",
        "afqmc_public/test.json": "94b925f23a9615dd08199c4013f761f4",
    }),
    "TNEWS": Archive("https://bj.bcebos.com/paddlenlp/datasets/tnews_public.zip", "38186ed0a751bc33e3ae0c1b59319777", {
        "tnews_public/train.json": "25c021725309a3330736380a230850fd",
        "tnews_public/dev.json": "f0660a3339a32e764075c801b42ece3c",
        "tnews_public/test.json": "045a6c4f59bf1a066c4a0d7afe6cd2b4",
        "tnews_public/test1.0.json": "2d1557c7548c72d5a84c47bbbd3a4e85",
        "tnews_public/labels.json": "a1a7595e596b202556dedd2a20617769",
    }),
    "IFLYTEK": Archive("https://bj.bcebos.com/paddlenlp/datasets/iflytek_public.zip", "19e4b19947db126f69aae18db0da2b87", {
        "iflytek_public/train.json": "fc9a21700c32ee3efee3fc283e9ac560",
        "iflytek_public/dev.json": "79b7d95bddeb11cd54198fd077992704",
        "iflytek_public/test.json": "ea764519ddb4369767d07664afde3325",
        "iflytek_public/labels.json": "7f9e794688ffb37fbd42b58325579fdf",
    }),
    "OCNLI": Archive("https://bj.bcebos.com/paddlenlp/datasets/ocnli_public.zip", "acb426f6f3345076c6ce79239e7bc307", {
        "ocnli_public/train.50k.json": "d38ec492ef086a894211590a18ab7596",
        "ocnli_public/dev.json": "3481b456bee57a3c9ded500fcff6834c",
        "ocnli_public/test.json": "680ff24e6b3419ff8823859bc17936aa",
    }),
    "CMNLI": Archive("https://bj.bcebos.com/paddlenlp/datasets/cmnli_public.zip", "e0e8caefd9b3491220c18b466233f2ff", {
        "cmnli_public/train.json": "7d02308650cd2a0e183bf599ca9bb263",
        "cmnli_public/dev.json": "0b16a50a297a9afb1ce5385ee4dd3d9c",
        "cmnli_public/test.json": "804cb0bb67266983d59d1c855e6b03b0",
    }),
    "CLUEWSC2020": Archive("https://bj.bcebos.com/paddlenlp/datasets/cluewsc2020_public.zip", "2e387e20e93eeab0ffaded5b0d2dfd3d", {
        "cluewsc2020_public/train.json": "afd235dcf8cdb89ee1a21d0a4823eecc",
        "cluewsc2020_public/dev.json": "bad8cd6fa0916fc37ac96b8ce316714a",
        "cluewsc2020_public/test.json": "27614454cc26be6fcab5bbd9a45967ff",
        "cluewsc2020_public/test1.0.json": "0e9e8ffd8ee90ddf1f58d6dc2e02de7b",
    }),
    "CSL": Archive("https://bj.bcebos.com/paddlenlp/datasets/csl_public.zip", "394a2ccbf6ddd7e331be4d5d7798f0f6", {
        "csl_public/train.json": "e927948b4e0eb4992fe9f45a77446bf5",
        "csl_public/dev.json": "6c2ab8dd3b4785829ead94b05a1cb957",
        "csl_public/test.json": "ebfb89575355f00dcd9b18f8353547cd",
    }),
}

# MRPC: Microsoft's files and GLUE's list of the dev set's ids, and the files built from them.
MRPC_SOURCES: dict[str, Source] = {
    "train_data": Source("https://bj.bcebos.com/dataset/glue/mrpc/msr_paraphrase_train.txt", "793daf7b6224281e75fe61c1f80afe35"),
    "dev_id": Source("https://bj.bcebos.com/dataset/glue/mrpc/dev_ids.tsv", "7ab59a1b04bd7cb773f98a0717106c9b"),
    "test_data": Source("https://bj.bcebos.com/dataset/glue/mrpc/msr_paraphrase_test.txt", "e437fdddb92535b820fe8852e2df8a49"),
}
MRPC_FILES: dict[str, str] = {
    "MRPC/train.tsv": "dc2dac669a113866a6480a0b10cd50bf",
    "MRPC/dev.tsv": "185958e46ba556b38c6a7cc63f3a2135",
    "MRPC/test.tsv": "4825dab4b4832f81455719660b608de5",
}


def benchmark_folder(benchmark: str) -> Path:
    """Where PaddleNLP's load_dataset('glue'|'clue', ...) keeps a benchmark's files: its DATA_HOME
    ($PPNLP_HOME/datasets, default ~/.paddlenlp/datasets) / the dataset class's name, Glue or Clue."""
    return download.paddlenlp_home() / "datasets" / benchmark.capitalize()


def fetch_task(benchmark: str, task: str) -> None:
    """Put a GLUE or CLUE task's files (all splits, test included) into PaddleNLP's cache, downloading
    PaddleNLP's archive or, for MRPC, Microsoft's files. A lock on the task's entry: one process of a
    distributed launch downloads, the others wait."""
    root = benchmark_folder(benchmark)
    if task == "MRPC":
        with download.entry_lock(root / "MRPC"):
            build_mrpc(root)
        return
    archive = (GLUE_ARCHIVES if benchmark.upper() == "GLUE" else CLUE_ARCHIVES)[task]
    with download.entry_lock(root / task):
        if all((root / name).is_file() for name in archive.files):
            return
        path = download.fetch(archive.url, root / archive.url.rsplit("/", 1)[-1],
                              what=f"{benchmark.upper()}'s {task} archive", md5=archive.md5)
        unpack_checked(path, root, archive.files)


def unpack_checked(archive: Path, root: Path, expected: dict[str, str]) -> None:
    """Unpack into a temporary sibling, check each expected file's md5, then move every file into place;
    a mismatch removes what was unpacked (and the archive, so that the next run fetches it anew)."""
    staging = root / f".{archive.name}.unpacking"
    download.remove(staging)
    try:
        download.unpack(archive, staging)
        for name, md5 in expected.items():
            _check_md5(staging / name, md5, name, archive)
        unpacked = {str(p.relative_to(staging)): p for p in sorted(staging.rglob("*")) if p.is_file()}
        download.move_into_place(unpacked, root)
    finally:
        download.remove(staging)


def _check_md5(path: Path, md5: str, name: str, archive: Path) -> None:
    if not path.is_file():
        archive.unlink(missing_ok=True)
        raise DataError(archive, None, f"lacks {name}: not PaddleNLP's archive; it is deleted, run again to "
                                       "fetch it anew")
    got = download.md5_of(path)
    if got != md5:
        archive.unlink(missing_ok=True)
        raise DataError(archive, None, f"its {name} has md5 {got}, not PaddleNLP's published {md5}: the archive "
                                       "is corrupt and is deleted; run again to fetch it anew")


# ----------------------------------------------------------------------------------------------
# MRPC, built as PaddleNLP builds it (Glue._get_data, after GLUE's download_glue_data.py)


def build_mrpc(root: Path) -> None:
    """Glue/MRPC/{train,dev,test}.tsv from Microsoft's files: the training file's rows go to dev.tsv when
    their (id1, id2) is on the dev id list, else to train.tsv, each under the file's own header; the test
    file's rows get an index in place of the label. Each result is checked against PaddleNLP's md5."""
    folder = root / "MRPC"
    if not all((root / name).is_file() for name in ("MRPC/train.tsv", "MRPC/dev.tsv")):
        ids = _mrpc_source("dev_id", folder)
        data = _mrpc_source("train_data", folder)
        dev_ids = {tuple(line.strip().split("\t")) for line in _lines(ids)}
        header, rows = _header_and_rows(data)
        train = [r for r in rows if (r[1], r[2]) not in dev_ids]
        dev = [r for r in rows if (r[1], r[2]) in dev_ids]
        _write_checked(folder / "train.tsv", header, train)
        _write_checked(folder / "dev.tsv", header, dev)
    if not (folder / "test.tsv").is_file():
        _, rows = _header_and_rows(_mrpc_source("test_data", folder))
        indexed = [[str(i), *row[1:]] for i, row in enumerate(rows)]
        _write_checked(folder / "test.tsv", "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n", indexed)


def _mrpc_source(kind: str, folder: Path) -> Path:
    source = MRPC_SOURCES[kind]
    return download.fetch(source.url, folder / source.url.rsplit("/", 1)[-1], what=f"MRPC's {kind} file",
                          md5=source.md5)


def _lines(path: Path) -> list[str]:
    # PaddleNLP reads with universal newlines: Microsoft's files end their lines with CRLF
    with open(path, encoding="utf-8") as f:
        return f.readlines()


def _header_and_rows(path: Path) -> tuple[str, list[list[str]]]:
    lines = _lines(path)
    rows = [line.strip().split("\t") for line in lines[1:]]
    bad = next((i for i, r in enumerate(rows) if len(r) != 5), None)
    if bad is not None:
        raise DataError(path, bad + 2, f"expected 5 tab-separated columns, found {len(rows[bad])}")
    return lines[0], rows


def _write_checked(path: Path, header: str, rows: list[list[str]]) -> None:
    with checkpoints.atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(header)
            f.writelines("\t".join(row) + "\n" for row in rows)
        _check_built(tmp, path)


def _check_built(tmp: Path, path: Path) -> None:
    want = MRPC_FILES[f"MRPC/{path.name}"]
    got = download.md5_of(tmp)
    if got != want:
        raise DataError(path, None, f"built from Microsoft's files, it has md5 {got}, not PaddleNLP's {want}: "
                                    "the source files differ from PaddleNLP's; delete them and run again")
