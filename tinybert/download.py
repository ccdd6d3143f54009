"""Every download of the project, in one place: a file from an address into a cache, checked and
moved into place atomically, resumed when a connection drops, and one line when it cannot be had.

    with download.entry_lock(folder):              # one process downloads, the others wait
        download.fetch(url, folder / "vocab.txt", what="bert-base-uncased vocabulary", md5=None)

Used by tinybert/models/hub.py (PaddleNLP's named models, Hugging Face names) and tinybert/data/fetch.py
(GLUE and CLUE). Nothing here runs when a local folder or file is given: callers look locally first.

Settings (environment variables):
    TINYBERT_OFFLINE=1    never use the network; a missing file fails at once with the file to put where
                          (HF_HUB_OFFLINE=1 does the same for Hugging Face names)
    TINYBERT_MIRROR=URL   a mirror of PaddleNLP's host (bj.bcebos.com) holding the same paths:
                          https://bj.bcebos.com/paddlenlp/x.zip is fetched as URL/paddlenlp/x.zip
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import socket
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterator

from tinybert.errors import DataError, UserError
from tinybert.models import checkpoints

OFFLINE_ENV = "TINYBERT_OFFLINE"
MIRROR_ENV = "TINYBERT_MIRROR"
HF_OFFLINE_ENV = "HF_HUB_OFFLINE"
# PaddleNLP's tables say http:// for this host, which serves the same files over https.
HTTPS_HOSTS = ("bj.bcebos.com",)
ATTEMPTS = 3            # a dropped connection is resumed this many times before giving up
TIMEOUT = 30            # seconds without a byte before a connection counts as dropped
CHUNK = 1 << 16


def _is_set(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def is_offline() -> bool:
    """TINYBERT_OFFLINE is set: nothing is downloaded."""
    return _is_set(OFFLINE_ENV)


def hub_is_offline() -> bool:
    """Hugging Face names: HF_HUB_OFFLINE, or this project's own switch."""
    return _is_set(HF_OFFLINE_ENV) or is_offline()


def address(url: str) -> str:
    """The address to fetch: https for a host that serves it, then the mirror's base in place of the host."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "http" and parts.hostname in HTTPS_HOSTS:
        parts = parts._replace(scheme="https")
    mirror = os.environ.get(MIRROR_ENV, "").strip().rstrip("/")
    if mirror:
        return mirror + parts.path + (f"?{parts.query}" if parts.query else "")
    return urllib.parse.urlunsplit(parts)


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def paddlenlp_home() -> Path:
    """PaddleNLP's cache root, shared with PaddleNLP itself: $PPNLP_HOME, else ~/.paddlenlp."""
    return Path(os.environ.get("PPNLP_HOME", Path.home() / ".paddlenlp")).expanduser()


# ----------------------------------------------------------------------------------------------
# One process downloads, the others wait


@contextlib.contextmanager
def entry_lock(entry: Path) -> Iterator[None]:
    """Hold a cache entry (a folder or a file) while it is filled: under paddle.distributed.launch every
    process asks for the same name, one downloads, the others wait here and then find the files in place.
    The writers' one lock (checkpoints.writing) in its waiting form."""
    with checkpoints.writing(entry, "cache entry", wait=True):
        yield


# ----------------------------------------------------------------------------------------------
# Fetching one file


def offline_error(what: str, target: Path, url: str, switch: str = OFFLINE_ENV) -> UserError:
    return UserError(f"{what} not found locally at {target}, and {switch}=1 forbids downloading it from {url}; "
                     f"to work offline put that file at {target}")


def fetch(url: str, target: str | os.PathLike, what: str, md5: str | None = None, quiet: bool = False) -> Path:
    """`target`, downloaded from `url` (through address()) unless it is there already.

    The bytes go to '.NAME.part' beside it (kept when the connection drops, and resumed from there,
    by this call's retries or the next run's); the size the server announced and `md5` (where one is
    published) are checked before the rename into place, so a file at `target` is always whole."""
    target = Path(target)
    if target.is_file():
        return target
    url = address(url)
    if is_offline():
        raise offline_error(what, target, url)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.parent / f".{target.name}.part"
    reason = ""
    for _ in range(ATTEMPTS):
        try:
            if _download(url, part, target.name, quiet):
                break
            reason = f"the connection dropped at {_size(part.stat().st_size)}"
        except urllib.error.HTTPError as e:
            raise _unreachable(what, target, url, f"HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:  # a broken proxy: BadStatusLine
            reason = _network_reason(e)
    else:
        raise _unreachable(what, target, url, reason + ("; run again to resume" if part.exists() else ""))
    if md5:
        got = md5_of(part)
        if got != md5:
            part.unlink()
            raise DataError(target, None, f"downloaded from {url}, but its md5 is {got}, not the published {md5}: "
                                          f"the download was corrupt and is deleted; run again to fetch it anew")
    os.replace(part, target)
    return target


def _unreachable(what: str, target: Path, url: str, reason: str) -> UserError:
    return UserError(f"{what} not found locally at {target}, and {url} failed ({reason}); to work offline "
                     f"put that file at {target} (or set {MIRROR_ENV} to a mirror)")


def _network_reason(e: BaseException) -> str:
    inner = getattr(e, "reason", None) or e
    if isinstance(inner, (socket.timeout, TimeoutError)):
        return "timed out"
    text = getattr(inner, "strerror", None) or str(inner)
    return text.strip().splitlines()[0] if text.strip() else type(inner).__name__


def _download(url: str, part: Path, name: str, quiet: bool) -> bool:
    """Append the rest of `url` to `part` (a Range request from its size). True when the file is whole:
    as long as the server said; False when the connection ended early."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not have:  # 416: the range starts at or past the end: begin again
            raise
        part.unlink()
        return _download(url, part, name, quiet)
    with response:
        if have and response.status != 206:  # the server ignores Range: it sends the whole file
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        from tqdm import tqdm

        with open(part, "ab" if have else "wb") as f, tqdm(
                total=total, initial=have, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
                disable=quiet, file=sys.stderr, leave=False) as bar:
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    f.write(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException):  # reset, timeout, IncompleteRead: resume later
                return False
    return total is None or part.stat().st_size == total


def _size(n: int) -> str:
    return f"{n} bytes" if n < 2**20 else f"{n / 2**20:.1f} MB"


# ----------------------------------------------------------------------------------------------
# Unpacking an archive


def unpack(archive: Path, into: Path) -> None:
    """Unpack a .zip or .tar(.gz) into `into`; a member that would land outside it is refused."""
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    root = into.resolve()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    _check_inside(root, member, archive)
                zf.extractall(into)
        else:
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    _check_inside(root, member.name, archive)
                    if not (member.isfile() or member.isdir()):
                        raise DataError(archive, None, f"refused to unpack: {member.name} is a link or device")
                tf.extractall(into)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
        raise DataError(archive, None, f"not a readable archive ({e}); delete it and run again") from None


def _check_inside(root: Path, member: str, archive: Path) -> None:
    if not (root / member).resolve().is_relative_to(root):
        raise DataError(archive, None, f"refused to unpack: {member} would land outside {root}")


def move_into_place(files: dict[str, Path], root: Path) -> None:
    """Move checked files (relative name -> where they are now) under `root`, each in one rename."""
    for name, source in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)


def remove(path: Path) -> None:
    """A file or folder, gone (nothing when it is not there)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------
# Hugging Face names: huggingface_hub (its cache, HF_ENDPOINT, HF_HUB_OFFLINE)


def hub_cache() -> Path | None:
    """huggingface_hub's cache, from the environment of this call (huggingface_hub reads it once, on import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return None  # huggingface_hub's default, ~/.cache/huggingface/hub


def hub_file(repo_id: str, filename: str) -> Path | None:
    """One file of a Hugging Face model repository, from huggingface_hub's cache or downloaded into it
    (with its own progress bar and locks). None when the repository has no such file, or, offline, when
    the cache has none."""
    from huggingface_hub import hf_hub_download, hf_hub_url
    from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RemoteEntryNotFoundError, RepositoryNotFoundError)

    endpoint = os.environ.get("HF_ENDPOINT", "").rstrip("/") or None
    try:
        return Path(hf_hub_download(repo_id, filename, cache_dir=hub_cache(), endpoint=endpoint,
                                    local_files_only=hub_is_offline()))
    except RemoteEntryNotFoundError:
        return None
    except RepositoryNotFoundError:
        raise UserError(f"{repo_id!r} is not a local folder, and {endpoint or 'huggingface.co'} has no model "
                        f"repository of that name (a private one needs `hf auth login`)") from None
    except LocalEntryNotFoundError as e:
        if hub_is_offline():
            return None
        url = hf_hub_url(repo_id, filename, endpoint=endpoint)
        cause = e.__cause__ or e
        raise UserError(f"{repo_id} not found locally (no folder of that name, and not in huggingface_hub's cache "
                        f"{hub_cache() or '~/.cache/huggingface/hub'}), and {url} failed "
                        f"({_network_reason(cause)}); to work offline download the repository's files into a "
                        f"folder and pass that folder (or set HF_ENDPOINT to a mirror)") from None
    except EntryNotFoundError:
        return None
    except HfHubHTTPError as e:
        raise UserError(f"cannot download {filename} of {repo_id}: {str(e).splitlines()[0]}") from None


def hub_offline_error(repo_id: str, wanted: str) -> UserError:
    switch = HF_OFFLINE_ENV if _is_set(HF_OFFLINE_ENV) else OFFLINE_ENV
    return UserError(f"{repo_id}: {wanted} not found locally (no folder of that name, and not in huggingface_hub's "
                     f"cache {hub_cache() or '~/.cache/huggingface/hub'}), and {switch}=1 forbids downloading it; "
                     f"to work offline download the repository's files into a folder and pass that folder")
