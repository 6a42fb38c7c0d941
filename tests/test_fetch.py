"""``cnnvit data fetch`` and ``cnnvit data check``, for real, against small archives served by an
HTTP server on 127.0.0.1 inside the test (with Range support): a good archive, a corrupt one, a
transfer cut short and resumed, a checksum mismatch, a refusing host. No internet is needed."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from cnnvit.datasets import celeba, cifar10, cifar100, fetch
from cnnvit.datasets import tiny_imagenet as tin
from cnnvit.datasets import default_root, load_dataset
from cnnvit.datasets.fetch import FetchError, Source
from helpers import write_celeba, write_cifar_pickles, write_tiny_imagenet


class FileServer:
    """Serves ``files`` (path -> bytes). ``cut[path] = n``: the next full response for that path
    announces the whole length but stops after n bytes. ``ranges``: honour ``Range: bytes=N-``.
    ``pages[path]``: answer with that HTML instead. Every request is logged as (path, Range)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.pages: dict[str, str] = {}
        self.ranges = True
        self.log: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                path, rng = self.path, self.headers.get("Range")
                server.log.append((path, rng))
                if path in server.pages:
                    body = server.pages[path].encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if path not in server.files:
                    self.send_error(404)
                    return
                data = server.files[path]
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and server.ranges:
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes" if server.ranges else "none")
                self.end_headers()
                body = data[start:]
                if path in server.cut and start == 0:
                    body = body[:server.cut.pop(path)]
                    self.close_connection = True
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def source(self, path: str, filename: str, md5: str | None = "auto") -> Source:
        """A :class:`Source` for a served file, with its true MD5 unless one is given."""
        if md5 == "auto":
            md5 = hashlib.md5(self.files[path]).hexdigest()
        return Source(self.url + path, filename, md5)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FileServer()
    yield s
    s.close()


def tar_gz(folder: Path, arcname: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(folder, arcname=arcname)
    return buf.getvalue()


def zip_of(folder: Path, arcname: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(folder.rglob("*")):
            z.write(p, f"{arcname}/{p.relative_to(folder)}")
    return buf.getvalue()


@pytest.fixture
def cifar_archive(tmp_path):
    """torchvision's CIFAR-10 archive in miniature (about 200 KB) and the arrays it holds."""
    arrays = write_cifar_pickles(tmp_path / "src" / "cifar-10-batches-py", per_batch=10, n_test=10)
    return tar_gz(tmp_path / "src" / "cifar-10-batches-py", "cifar-10-batches-py"), arrays


def cifar_spec(server: FileServer, data: bytes, md5: str | None = "auto"):
    server.files["/cifar-10-python.tar.gz"] = data
    src = server.source("/cifar-10-python.tar.gz", "cifar-10-python.tar.gz", md5)
    return dataclasses.replace(cifar10.FETCH, sources=(src,))


def leftovers(data_dir: Path) -> list[str]:
    """Anything a fetch should not leave behind: staging folders, partial files, archives."""
    return sorted(p.name for p in data_dir.rglob("*") if ".partial-" in p.name or p.suffix == ".part"
                  or p.name == fetch.DOWNLOADS)


# ------------------------------------------------------------------------------- fetch

def test_good_archive_is_verified_unpacked_and_loads(tmp_path, server, cifar_archive):
    data, arrays = cifar_archive
    spec = cifar_spec(server, data)
    status = fetch.fetch_dataset(spec, tmp_path / "data", progress=False)
    assert status.state == "present" and "10 classes" in status.detail
    assert (tmp_path / "data" / "cifar10" / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert leftovers(tmp_path / "data") == []  # archive deleted once in place, no staging left
    ds = load_dataset("cifar10", root=str(tmp_path / "data" / "cifar10"))
    np.testing.assert_array_equal(ds.train_images, arrays["train_x"])
    # present: left alone, not even a request
    n = len(server.log)
    assert fetch.fetch_dataset(spec, tmp_path / "data", progress=False).state == "present"
    assert len(server.log) == n


def test_corrupt_archive_leaves_nothing_in_place(tmp_path, server, cifar_archive):
    data, _ = cifar_archive
    spec = cifar_spec(server, data[: len(data) // 2])  # checksum of the broken file: it "verifies"
    with pytest.raises(FetchError, match="could not unpack cifar-10-python.tar.gz"):
        fetch.fetch_dataset(spec, tmp_path / "data", progress=False)
    assert not (tmp_path / "data" / "cifar10").exists()
    assert leftovers(tmp_path / "data") == []


def test_archive_without_the_layout_is_refused(tmp_path, server):
    (tmp_path / "src" / "something").mkdir(parents=True)
    (tmp_path / "src" / "something" / "readme.txt").write_text("not CIFAR-10")
    spec = cifar_spec(server, tar_gz(tmp_path / "src" / "something", "something"))
    with pytest.raises(FetchError, match="do not hold the expected layout"):
        fetch.fetch_dataset(spec, tmp_path / "data", progress=False)
    assert not (tmp_path / "data" / "cifar10").exists()


def test_interrupted_transfer_is_resumed_with_range(tmp_path, server, cifar_archive):
    data, _ = cifar_archive
    spec = cifar_spec(server, data)
    server.cut["/cifar-10-python.tar.gz"] = 50_000
    status = fetch.fetch_dataset(spec, tmp_path / "data", progress=False)
    assert status.state == "present"
    assert server.log == [("/cifar-10-python.tar.gz", None), ("/cifar-10-python.tar.gz", "bytes=50000-")]


def test_partial_file_is_resumed_by_the_next_call(tmp_path, server, cifar_archive):
    data, _ = cifar_archive
    spec = cifar_spec(server, data)
    server.cut["/cifar-10-python.tar.gz"] = 70_000
    with pytest.raises(FetchError, match="run the command again to resume"):
        fetch.fetch_dataset(spec, tmp_path / "data", progress=False, retries=0)
    part = tmp_path / "data" / "downloads" / "cifar-10-python.tar.gz.part"
    assert part.stat().st_size == 70_000  # kept for the next call
    assert not (tmp_path / "data" / "cifar10").exists()
    assert fetch.fetch_dataset(spec, tmp_path / "data", progress=False).state == "present"
    assert server.log[-1] == ("/cifar-10-python.tar.gz", "bytes=70000-")
    assert leftovers(tmp_path / "data") == []


def test_server_without_range_support_starts_over(tmp_path, server, cifar_archive):
    data, _ = cifar_archive
    spec = cifar_spec(server, data)
    server.ranges = False
    server.cut["/cifar-10-python.tar.gz"] = 50_000
    assert fetch.fetch_dataset(spec, tmp_path / "data", progress=False).state == "present"
    assert len(server.log) == 2  # the second answer was the whole file again, written afresh


def test_checksum_mismatch_is_refused_and_the_file_deleted(tmp_path, server, cifar_archive):
    data, _ = cifar_archive
    spec = cifar_spec(server, data, md5="0" * 32)
    with pytest.raises(FetchError) as exc:
        fetch.fetch_dataset(spec, tmp_path / "data", progress=False)
    msg = str(exc.value)
    assert "checksum mismatch" in msg and server.url + "/cifar-10-python.tar.gz" in msg
    assert hashlib.md5(data).hexdigest() in msg and "0" * 32 in msg
    assert "place the files by hand" in msg
    assert not (tmp_path / "data" / "cifar10").exists()
    assert leftovers(tmp_path / "data") == []


def test_archive_placed_by_hand_is_checked_and_used(tmp_path, server, cifar_archive):
    data, _ = cifar_archive
    spec = cifar_spec(server, data)
    (tmp_path / "data" / "downloads").mkdir(parents=True)
    (tmp_path / "data" / "downloads" / "cifar-10-python.tar.gz").write_bytes(data)
    assert fetch.fetch_dataset(spec, tmp_path / "data", progress=False).state == "present"
    assert server.log == []


def test_unreachable_host_fails_fast_naming_the_url_and_the_manual_way(tmp_path):
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as s:
        port = s.server_address[1]  # closed again below: nothing listens there
    url = f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"
    spec = dataclasses.replace(cifar10.FETCH, sources=(Source(url, "cifar-10-python.tar.gz", "0" * 32),))
    t = time.monotonic()
    with pytest.raises(FetchError) as exc:
        fetch.fetch_dataset(spec, tmp_path / "data", timeout=2, progress=False)
    assert time.monotonic() - t < 5
    msg = str(exc.value)
    assert f"could not reach {url}" in msg
    assert f"put it in {tmp_path / 'data' / 'downloads'}/" in msg
    assert "cifar-10-batches-py/" in msg  # the layout, for unpacking by hand
    assert not (tmp_path / "data").exists()  # nothing written


def test_refusing_host_is_named_with_the_manual_way(tmp_path, server):
    server.pages["/img"] = ("<html><head><title>Google Drive - Quota exceeded</title></head><body>Too many "
                            "users have viewed or downloaded this file recently.</body></html>")
    server.files["/attr"] = b"1\nEyeglasses\n000001.jpg 1\n"
    spec = dataclasses.replace(celeba.FETCH, sources=(server.source("/img", "img_align_celeba.zip", None),
                                                      server.source("/attr", celeba.ATTR_FILE)))
    with pytest.raises(FetchError) as exc:
        fetch.fetch_dataset(spec, tmp_path / "data", progress=False)
    msg = str(exc.value)
    assert "refused" in msg and "quota" in msg and server.url + "/img" in msg
    assert "mmlab.ie.cuhk.edu.hk" in msg and "list_attr_celeba.txt" in msg
    assert not (tmp_path / "data" / "celeba").exists()


def test_tiny_imagenet_and_celeba_archives_unpack_into_their_layouts(tmp_path, server):
    write_tiny_imagenet(tmp_path / "tin_src")
    server.files["/tin.zip"] = zip_of(tmp_path / "tin_src" / "tiny-imagenet-200", "tiny-imagenet-200")
    write_celeba(tmp_path / "cel_src", n=30, folder="img_align_celeba")
    server.files["/img.zip"] = zip_of(tmp_path / "cel_src" / "img_align_celeba", "img_align_celeba")
    server.files["/attr.txt"] = (tmp_path / "cel_src" / celeba.ATTR_FILE).read_bytes()
    specs = [dataclasses.replace(tin.FETCH, sources=(server.source("/tin.zip", "tiny-imagenet-200.zip"),)),
             dataclasses.replace(celeba.FETCH, sources=(server.source("/img.zip", "img_align_celeba.zip"),
                                                        server.source("/attr.txt", celeba.ATTR_FILE)))]
    data = tmp_path / "data"
    for spec in specs:
        assert fetch.fetch_dataset(spec, data, progress=False).state == "present"
    assert (data / "tiny-imagenet-200" / "wnids.txt").is_file()  # the archive's top folder is the data set's
    assert (data / "celeba" / "img_align_celeba" / "000030.jpg").is_file()
    assert len(load_dataset("tiny-imagenet", root=str(data / "tiny-imagenet-200")).train_labels) == 30
    assert len(load_dataset("celeba", root=str(data / "celeba"), attribute="Eyeglasses").test_labels) == 3
    assert leftovers(data) == []


def test_download_setting_fetches_through_the_same_code(tmp_path, server, cifar_archive, monkeypatch):
    data, _ = cifar_archive
    monkeypatch.setattr(cifar10, "FETCH", cifar_spec(server, data))
    ds = load_dataset("cifar10", root=str(tmp_path / "mine"), download=True)
    assert len(ds.train_labels) == 50 and (tmp_path / "mine" / "cifar-10-batches-py").is_dir()


# ------------------------------------------------------------------------------- check

def test_check_reports_present_missing_and_corrupt(tmp_path, image_folder):
    data = tmp_path / "data"
    image_folder(data / "cifar10", classes=tuple(f"c{i}" for i in range(10)))  # image folders
    write_tiny_imagenet(data)
    write_celeba(data / "celeba", n=20)  # any image folder name, found by its contents
    cifar100.write_generated(data / "cifar100", 200)
    states = {s.name: s for s in (fetch.check_dataset(spec, data) for spec in fetch.resolve(["all"]))}
    assert {n: s.state for n, s in states.items()} == {"cifar10": "present", "cifar100": "present",
                                                       "tiny-imagenet": "present", "celeba": "present"}
    assert "image folders" in states["cifar10"].detail and "img_align_celeba_17x21" in states["celeba"].detail
    assert "100 classes (20 superclasses), 200 train and 40 test images" in states["cifar100"].detail

    empty = tmp_path / "empty"
    for spec in fetch.resolve(["all"]):
        status = fetch.check_dataset(spec, empty)
        assert status.state == "missing"
        assert status.action == f"fetch it: python -m cnnvit data fetch {spec.name} --to {empty}"


@pytest.mark.parametrize("damage", ["truncated pickle", "attribute file", "tiny val image"])
def test_check_finds_corrupt_copies_and_fetch_leaves_them_alone(tmp_path, damage, server, cifar_archive):
    data = tmp_path / "data"
    if damage == "truncated pickle":
        name, spec = "cifar10", cifar_spec(server, cifar_archive[0])
        write_cifar_pickles(data / "cifar10" / "cifar-10-batches-py", per_batch=10, n_test=10)
        batch = data / "cifar10" / "cifar-10-batches-py" / "data_batch_3"
        batch.write_bytes(batch.read_bytes()[:1000])
        culprit = "data_batch_3"
    elif damage == "attribute file":
        name, spec = "celeba", celeba.FETCH
        write_celeba(data / "celeba", n=20)
        attr = data / "celeba" / celeba.ATTR_FILE
        attr.write_text("\n".join(attr.read_text().splitlines()[:-3]) + "\n")  # rows cut off
        culprit = "truncated"
    else:
        name, spec = "tiny-imagenet", tin.FETCH
        folder = write_tiny_imagenet(data)
        (folder / "val" / "images" / "val_0.JPEG").unlink()
        culprit = "val_0.JPEG"
    status = fetch.check_dataset(spec, data)
    assert status.state == "corrupt" and culprit in status.detail
    assert status.action.startswith(f"move or delete {default_root(spec.name, data)}")
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    with pytest.raises(FetchError, match="Nothing was changed"):
        fetch.fetch_dataset(spec, data, progress=False)
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before
    assert server.log == []
    assert name in fetch.dataset_specs()


def test_unknown_name_lists_the_choices():
    with pytest.raises(FetchError, match="cifar10, cifar100, tiny-imagenet, celeba"):
        fetch.resolve(["imagenet"])


# --------------------------------------------------------------------------- command line

@pytest.fixture
def main(monkeypatch):
    import logging

    from cnnvit.__main__ import main as cli_main

    monkeypatch.setattr(logging, "basicConfig", lambda **kw: None)
    return cli_main


def test_cli_fetch_then_check(tmp_path, main, capsys, server, cifar_archive, monkeypatch):
    spec = cifar_spec(server, cifar_archive[0])
    real = fetch.dataset_specs()
    monkeypatch.setattr(fetch, "dataset_specs", lambda: {**real, "cifar10": spec})
    data = tmp_path / "data"
    assert main(["-q", "data", "fetch", "cifar10", "--to", str(data)]) == 0
    assert re.search(r"^cifar10\s+present\s+torchvision's format", capsys.readouterr().out, re.M)
    assert main(["data", "check", str(data)]) == 1  # the other two are missing
    out = capsys.readouterr().out
    assert re.search(r"^cifar10\s+present", out, re.M)
    assert re.search(r"^celeba\s+missing", out, re.M)
    assert f"python -m cnnvit data fetch tiny-imagenet --to {data}" in out
    assert main(["data", "check", str(data), "cifar10"]) == 0


def test_cli_fetch_failure_is_a_message_not_a_traceback(tmp_path, main, capsys, server, cifar_archive,
                                                        monkeypatch):
    spec = cifar_spec(server, cifar_archive[0], md5="0" * 32)
    monkeypatch.setattr(fetch, "dataset_specs", lambda: {"cifar10": spec})
    assert main(["data", "fetch", "all", "--to", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: CIFAR-10: checksum mismatch") and "Traceback" not in err
    assert main(["data", "fetch", "nosuch", "--to", str(tmp_path)]) == 2
    assert "unknown data set 'nosuch'" in capsys.readouterr().err


def test_cli_describe_still_works(main, capsys):
    assert main(["data", "--set", "data.name=synthetic", "data.synthetic_train=20",
                 "data.synthetic_test=10"]) == 0
    assert "train: 20 images" in capsys.readouterr().out
