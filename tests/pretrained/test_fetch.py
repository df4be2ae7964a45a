"""Downloads against a real HTTP server on 127.0.0.1 (http.server in a thread): good, tampered, truncated,
server down, mirror, offline, and two processes fetching one entry at once.

The served files are the bytes of a published entry; the entry under test points its URLs at the server
and has no package copy, so every file comes through pooch into ``ZOO_HOME``.
"""
from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT
from zoo.pretrained import PretrainedError, fetch, get_entry, list_pretrained
from zoo.pretrained.registry import Entry

SOURCE = get_entry(list_pretrained()[0])  # any published entry: its files are what the server serves
FILES = {p.name: p.read_bytes() for p in (SOURCE.package_folder / r.name for r in (SOURCE.weights, SOURCE.sidecar))}
WEIGHTS = SOURCE.weights.name


class Server:
    """Serves ``FILES`` under /<family>/<name>; ``mode`` decides what a GET of the weights gets."""

    def __init__(self):
        self.mode = "good"  # good | tampered | truncated | truncated_once | wait_for_two
        self.hits: list[str] = []
        self.ready: Path | None = None  # wait_for_two: the folder where each client process says it is fetching
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.hits.append(name)
                body = FILES.get(name)
                if body is None:
                    self.send_error(404)
                    return
                mode = server.mode if name == WEIGHTS else "good"
                if mode == "truncated_once":
                    mode = "truncated" if server.hits.count(name) == 1 else "good"
                if mode == "tampered":
                    body = body[:-64] + bytes(64)  # same size, other bytes: only the hash can tell
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "truncated":  # the connection drops after half of the announced bytes
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if mode == "wait_for_two":  # answer only once both processes are inside fetch(), so they overlap
                    deadline = time.monotonic() + 120
                    while len(list(server.ready.glob("ready_*"))) < 2 and time.monotonic() < deadline:
                        time.sleep(0.05)
                    time.sleep(0.5)  # the second one gets to the lock
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZOO_OFFLINE", raising=False)
    monkeypatch.delenv("ZOO_BASE_URL", raising=False)


def entry_at(base_url: str, tmp_path: Path) -> Entry:
    """The source entry with its URLs at ``base_url`` and no package copy (its registry file is in tmp_path)."""
    data = json.loads(json.dumps(SOURCE.data))
    for part in ("weights", "sidecar"):
        record = data["files"][part]
        record["url"] = f"{base_url}/{SOURCE.family}/{record['name']}"
    return Entry(SOURCE.family, SOURCE.tag, True, data, tmp_path / "registry" / "pretrained.json")


def cached(tmp_path: Path) -> list[str]:
    folder = tmp_path / "home" / "pretrained" / SOURCE.family
    return sorted(p.name for p in folder.iterdir() if p.suffix != ".lock") if folder.exists() else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_verifies_and_is_reused(server, tmp_path):
    entry = entry_at(server.url, tmp_path)
    stem = fetch(entry, retries=0)
    assert stem.parent == tmp_path / "home" / "pretrained" / SOURCE.family
    assert stem.with_suffix(".safetensors").read_bytes() == FILES[WEIGHTS]
    assert cached(tmp_path) == sorted(FILES)
    served = len(server.hits)
    assert fetch(entry, retries=0) == stem and len(server.hits) == served  # verified cache: no request


def test_tampered_file_is_refused_and_not_kept(server, tmp_path):
    server.mode = "tampered"
    with pytest.raises(PretrainedError, match=r"sha256 is not the registry's .*nothing was saved") as err:
        fetch(entry_at(server.url, tmp_path), retries=0)
    assert f"{server.url}/{SOURCE.family}/{WEIGHTS}" in str(err.value)
    assert WEIGHTS not in cached(tmp_path) and not [n for n in cached(tmp_path) if "tmp" in n]


def test_truncated_transfer_is_refused_then_retried(server, tmp_path):
    server.mode = "truncated"
    with pytest.raises(PretrainedError, match=WEIGHTS):
        fetch(entry_at(server.url, tmp_path), retries=0)
    assert WEIGHTS not in cached(tmp_path) and not [n for n in cached(tmp_path) if "tmp" in n]
    server.mode = "truncated_once"  # pooch's retry gets the whole file the second time
    server.hits.clear()
    stem = fetch(entry_at(server.url, tmp_path), retries=1)
    assert stem.with_suffix(".safetensors").read_bytes() == FILES[WEIGHTS]
    assert server.hits.count(WEIGHTS) == 2


def test_server_down_names_the_url_and_the_offline_way(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PretrainedError) as err:
        fetch(entry_at(url, tmp_path), retries=0)
    message = str(err.value)
    assert f"{url}/{SOURCE.family}/" in message and "ZOO_OFFLINE=1" in message and "zoo download" in message
    assert cached(tmp_path) == []


def test_mirror_replaces_the_base_url(server, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_BASE_URL", server.url + "/")
    stem = fetch(entry_at(f"http://127.0.0.1:{free_port()}", tmp_path), retries=0)  # the entry's own host is down
    assert stem.with_suffix(".safetensors").read_bytes() == FILES[WEIGHTS]
    assert sorted(server.hits) == sorted(FILES)


def test_offline_never_touches_the_network(server, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(PretrainedError, match="ZOO_OFFLINE is set") as err:
        fetch(entry_at(server.url, tmp_path), retries=0)
    assert str(tmp_path / "home") in str(err.value)
    assert server.hits == []
    # A published entry's package copy needs no network and no cache.
    assert fetch(SOURCE).parent == SOURCE.package_folder


def test_two_processes_download_one_good_file(server, tmp_path):
    server.mode, server.ready = "wait_for_two", tmp_path
    entry = entry_at(server.url, tmp_path)
    spec = tmp_path / "entry.json"
    spec.write_text(json.dumps({"data": entry.data, "source": str(entry.source)}))
    script = ("import json, sys; from pathlib import Path; from zoo.pretrained.fetch import fetch; "
              "from zoo.pretrained.registry import Entry; d = json.loads(Path(sys.argv[1]).read_text()); "
              "import os; (Path(sys.argv[1]).parent / f'ready_{os.getpid()}').touch(); "
              f"print(fetch(Entry({SOURCE.family!r}, {SOURCE.tag!r}, True, d['data'], Path(d['source'])), retries=0))")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(spec)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    stems = {o[0].strip().splitlines()[-1] for o in outs}
    assert len(stems) == 1
    assert Path(stems.pop()).with_suffix(".safetensors").read_bytes() == FILES[WEIGHTS]
    assert cached(tmp_path) == sorted(FILES)
    assert server.hits.count(WEIGHTS) == 1  # the second process waited on the lock and found the verified file


def test_zoo_home_defaults_to_the_cache_root(tmp_path, monkeypatch):
    from zoo.pretrained import home

    monkeypatch.delenv("ZOO_HOME")
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    assert home() == tmp_path / "cache"
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "weights"))
    assert home() == tmp_path / "weights"
