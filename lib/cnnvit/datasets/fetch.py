"""Fetch the real data sets into a data directory, and say what a data directory holds.

Each data set describes itself with a :class:`FetchSpec` beside its loading code, as the
``fetch`` of its :class:`~cnnvit.datasets.base.DatasetSpec` (``cifar10.py``, ``tiny_imagenet.py``,
``celeba.py``): the files to download with their MD5 checksums, how they are unpacked into the
layout its loader reads, and how to tell whether a folder holds it. This module does the rest,
the same for every data set:

* downloads into ``DATA_DIR/downloads/`` through a ``.part`` file, with a tqdm progress bar; a
  transfer cut short is resumed where it stopped (HTTP ``Range``), in the same call or the next;
* the MD5 of every file is checked before it is used;
* archives are unpacked into a staging folder beside the destination, checked there with the
  same inspection as ``check``, and renamed into place: a data set folder is either absent or
  complete, never half-written;
* a data set already present is left alone; a corrupt one is reported, not overwritten.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, TypeVar

from tqdm import tqdm  # plain text, as the training bars: readable in logs

from ..errors import DatasetError, FetchError
from .base import FetchSpec, Source, default_root, registered  # noqa: F401 (FetchSpec, Source: re-exported)

log = logging.getLogger(__name__)
T = TypeVar("T")

DOWNLOADS = "downloads"  # folder under the data directory for archives in transit
CONNECT_TIMEOUT = 10.0  # seconds: an offline machine fails at once, a stalled server in seconds
RETRIES = 5  # resumed attempts after a transfer is cut short, within one call
CHUNK = 1 << 20
USER_AGENT = "cnnvit-data-fetch"


class _Interrupted(Exception):
    """A transfer stopped before its end: resumable."""


@dataclass(frozen=True)
class Status:
    """What ``check`` found for one data set."""

    name: str
    folder: Path
    state: str  # present | missing | corrupt
    detail: str
    action: str = ""  # what to do about it (empty when present)


def dataset_specs() -> dict[str, FetchSpec]:
    """Every registered data set that can be fetched, by ``data.name``."""
    return {s.name: s.fetch for s in registered() if s.fetch is not None}


def resolve(names: list[str], specs: Optional[dict[str, FetchSpec]] = None) -> list[FetchSpec]:
    """The specs named (``all``: every one), in the order given; an unknown name is an error."""
    specs = dataset_specs() if specs is None else specs
    if not names or "all" in names:
        return list(specs.values())
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise FetchError(f"unknown data set {unknown[0]!r}: choose from {', '.join(specs)} or all")
    return [specs[n] for n in dict.fromkeys(names)]


def fetch_command(name: str, data_dir: Path) -> str:
    return f"python -m cnnvit data fetch {name} --to {data_dir}"


# ------------------------------------------------------------------------------- check

def inspect_folder(spec: FetchSpec, folder: Path) -> Status:
    """Present, missing or corrupt, as the data set's loader would find ``folder``."""
    try:
        found = spec.inspect(folder)
    except (DatasetError, OSError, UnicodeError) as exc:
        return Status(spec.name, folder, "corrupt", str(exc))
    if found is None:
        return Status(spec.name, folder, "missing", f"no {spec.title} in {folder}; expected {spec.layout}")
    return Status(spec.name, folder, "present", found)


def check_dataset(spec: FetchSpec, data_dir: Path) -> Status:
    """:func:`inspect_folder` on the data set's folder under ``data_dir``, with what to do."""
    folder = default_root(spec.name, data_dir)
    status = inspect_folder(spec, folder)
    if status.state == "missing":
        return replace(status, action=f"fetch it: {fetch_command(spec.name, data_dir)}")
    if status.state == "corrupt":
        return replace(status, action=f"move or delete {folder}, then: {fetch_command(spec.name, data_dir)}")
    return status


# ------------------------------------------------------------------------------- fetch

def fetch_dataset(spec: FetchSpec, data_dir: Path, *, timeout: float = CONNECT_TIMEOUT,
                  progress: bool = True, retries: int = RETRIES) -> Status:
    """Make ``data_dir`` hold ``spec``'s data set in the layout the studies read; return its
    status. Does nothing to a data set already present; refuses to touch a corrupt one."""
    data_dir = Path(data_dir).expanduser()
    folder = default_root(spec.name, data_dir)
    # fetch_into returns only once the data set is in place, with what it found there
    detail = fetch_into(spec, folder, data_dir / DOWNLOADS, timeout=timeout, progress=progress,
                        retries=retries, again=fetch_command(spec.name, data_dir))
    return Status(spec.name, folder, "present", detail)


def fetch_into(spec: FetchSpec, folder: Path, downloads: Optional[Path] = None, *,
               timeout: float = CONNECT_TIMEOUT, progress: bool = True, retries: int = RETRIES,
               again: str = "the same command") -> str:
    """Download, verify and unpack ``spec`` so that ``folder`` holds it (the folder its loader
    is given); ``downloads`` keeps the files in transit (default: ``downloads/`` beside
    ``folder``). Returns the description of what is in place."""
    folder = Path(folder).expanduser()
    downloads = Path(downloads) if downloads else folder.parent / DOWNLOADS
    status = inspect_folder(spec, folder)
    if status.state == "present":
        log.info("%s already present: %s", spec.title, status.detail)
        return status.detail
    if status.state == "corrupt":
        raise FetchError(f"{spec.title} in {folder} is there but unreadable: {status.detail}. Nothing "
                         f"was changed: move or delete {folder}, then run {again}")
    files = {}
    try:
        for source in spec.sources:
            try:
                files[source.filename] = download(source, downloads, timeout=timeout, progress=progress,
                                                  retries=retries)
            except FetchError as exc:
                raise FetchError(f"{spec.title}: {exc}\n"
                                 f"{manual_instructions(spec, folder, downloads, again)}") from None
        detail = _install(spec, files, folder, progress)
        for path in files.values():  # in place now: the archives are not needed any more
            path.unlink(missing_ok=True)
    finally:
        if downloads.is_dir() and not any(downloads.iterdir()):  # a partial file stays, for resuming
            downloads.rmdir()
    log.info("%s ready: %s", spec.title, detail)
    return detail


def find_or_fetch(find: Callable[[Path], Optional[T]], spec: FetchSpec, root: Path, download: bool,
                  missing: Callable[[Path], Exception]) -> T:
    """What ``find`` finds under ``root``; when nothing and ``download`` (data.download=true),
    fetch the data set there first; else raise ``missing(root)``."""
    found = find(root)
    if found is None and download:
        fetch_for_loader(spec, root)
        found = find(root)
    if found is None:
        raise missing(root)
    return found


def fetch_for_loader(spec: FetchSpec, root: Path) -> None:
    """``data.download=true``: fetch a missing data set into the folder its loader reads."""
    log.info("downloading %s into %s", spec.title, root)
    try:
        fetch_into(spec, root, again="it again")
    except FetchError as exc:
        raise DatasetError(f"{spec.title} download into {root} failed: {exc}") from exc


def _install(spec: FetchSpec, files: dict[str, Path], folder: Path, progress: bool) -> str:
    # staged beside the destination (same file system), so that the final rename is atomic
    staging = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        try:
            spec.unpack(files, staging, progress)
        except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            for path in files.values():  # a bad archive is no use for a later attempt
                path.unlink(missing_ok=True)
            verified = all(s.md5 for s in spec.sources)
            raise FetchError(f"{spec.title}: could not unpack {', '.join(files)}: {exc}. The "
                             f"downloaded files were deleted" + ("; their checksums matched, so the "
                             "files at the source (or the checksum table) are at fault, not the "
                             "transfer" if verified else "")) from exc
        status = inspect_folder(spec, staging)
        if status.state != "present":
            raise FetchError(f"{spec.title}: the downloaded files do not hold the expected layout "
                             f"({spec.layout}): {status.detail}")
        _move_into_place(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return inspect_folder(spec, folder).detail


def _move_into_place(staging: Path, folder: Path) -> None:
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        os.replace(staging, folder)  # replaces an empty folder too
        return
    # the folder holds other things (the loader did not find the data set in it): add ours
    clashes = [p.name for p in staging.iterdir() if (folder / p.name).exists()]
    if clashes:
        raise FetchError(f"{folder} already holds {', '.join(clashes)}, which the download would "
                         f"replace; nothing was changed: move them away and run the fetch again")
    for p in staging.iterdir():
        os.replace(p, folder / p.name)


def manual_instructions(spec: FetchSpec, folder: Path, downloads: Path, again: str) -> str:
    """How to do by hand what the fetch could not."""
    files = "; ".join(f"{s.page or s.url} as {s.filename}" + (f" (MD5 {s.md5})" if s.md5 else "")
                      for s in spec.sources)
    it = "it" if len(spec.sources) == 1 else "them"
    return (f"To place the files by hand: download {files} on a machine with internet, put {it} in "
            f"{downloads}/ and run {again} (it checks and unpacks {it}); or unpack {spec.title} "
            f"yourself so that {folder} holds {spec.layout}." + (f" {spec.note}" if spec.note else ""))


# ---------------------------------------------------------------------------- download

def md5sum(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(source: Source, folder: Path, *, timeout: float = CONNECT_TIMEOUT, progress: bool = True,
             retries: int = RETRIES) -> Path:
    """Download ``source`` into ``folder`` and check its MD5; return the file. A file already
    there with the right MD5 is used as it is (placed by hand, or left by an earlier call); a
    ``.part`` file left by an interrupted transfer is continued."""
    final = folder / source.filename
    if final.is_file():
        if source.md5 is None or md5sum(final) == source.md5:
            log.info("using %s (checksum verified)", final)
            return final
        log.warning("%s does not match MD5 %s: downloading it again", final, source.md5)
        final.unlink()
    part = folder / f"{source.filename}.part"
    attempt = 0
    while True:
        try:
            _transfer(source, part, timeout, progress)
            break
        except _Interrupted as exc:
            attempt += 1
            if attempt > retries:
                raise FetchError(f"the transfer of {source.url} was cut short {attempt} times ({exc}); "
                                 f"the {part.stat().st_size} bytes received are kept in {part}: run "
                                 f"the command again to resume") from None
            log.warning("transfer of %s cut short (%s): resuming", source.filename, exc)
    if source.md5:
        digest = md5sum(part)
        if digest != source.md5:
            part.unlink()
            raise FetchError(f"checksum mismatch for {source.url}: expected MD5 {source.md5}, got "
                             f"{digest}. The file was deleted; run the command again. If it happens "
                             f"again, the file at the source is not the one this project expects")
    os.replace(part, final)
    return final


def _transfer(source: Source, part: Path, timeout: float, progress: bool) -> None:
    """One HTTP request: the whole file, or the rest of it after the bytes already in ``part``."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(source.url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing after what we have: the .part is whole
            return
        raise FetchError(f"{source.url} was refused by its host: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"could not reach {source.url}: {reason} (no internet, or the host is "
                         f"down?)") from None
    with response:
        kind = response.headers.get("Content-Type", "")
        if kind.startswith("text/html") and not source.filename.endswith((".html", ".htm")):
            raise FetchError(f"{source.url} was refused by its host: it answered with a web page "
                             f"instead of {source.filename}: {_page_gist(response)}")
        length = response.headers.get("Content-Length")
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != have:  # not the rest of our file: start over
                part.unlink()
                raise _Interrupted(f"asked to resume at byte {have}, the server sent byte {start} on")
            log.info("resuming %s at %d bytes", source.filename, have)
        else:  # the whole file (a server without Range support answers 200 to a range request)
            have, total = 0, int(length) if length else None
        part.parent.mkdir(parents=True, exist_ok=True)  # only now: a failed connection leaves nothing
        with open(part, "ab" if have else "wb") as f, \
                tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=source.filename, disable=not progress, leave=False) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Interrupted(str(exc) or type(exc).__name__) from None
                if not chunk:
                    break
                f.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Interrupted(f"connection closed after {size} of {total} bytes")


def _content_range(value: str) -> tuple[int, Optional[int]]:
    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", value.strip())
    if not m:
        return -1, None
    return int(m.group(1)), None if m.group(2) == "*" else int(m.group(2))


def _page_gist(response) -> str:
    """A refusal page's title and, for Google Drive, whether it is the download quota."""
    text = response.read(200_000).decode("utf-8", errors="replace")
    if re.search(r"quota|too many users", text, re.I):
        return ("the file's download quota is exceeded (Google Drive allows only so many downloads "
                "a day); try again tomorrow, or place the files by hand")
    title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
    return f"page title {title.group(1).strip()!r}" if title else "a page without a title"


def google_drive_url(file_id: str) -> str:
    """The direct download URL of a Google Drive file (past the virus-scan page of large files)."""
    return f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"


# ------------------------------------------------------------------------------ unpack

def extract_archive(archive: Path, into: Path, progress: bool = True, strip: Optional[str] = None) -> None:
    """Unpack a .zip or .tar(.gz) into ``into``; ``strip``: a top folder of the archive whose
    contents go straight into ``into``. Members that would land outside ``into`` are refused."""
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            members = z.infolist()
            for m in tqdm(members, desc=f"unpacking {archive.name}", unit="file", disable=not progress,
                          leave=False):
                z.extract(m, into)  # zipfile drops absolute paths and '..'
    else:
        with tarfile.open(archive) as t:
            members = t.getmembers()
            for m in tqdm(members, desc=f"unpacking {archive.name}", unit="file", disable=not progress,
                          leave=False):
                t.extract(m, into, filter="data")  # refuses links and paths leaving ``into``
    if strip and (into / strip).is_dir():
        top = into / strip
        for p in top.iterdir():
            os.replace(p, into / p.name)
        top.rmdir()
