"""The local Hub stand-in (tests/hub_server.py) against the real `huggingface_hub` client.

The client runs in subprocesses: it reads HF_ENDPOINT/HF_HOME/... once, at import, so each script gets a clean
environment pointing at the server under test. This process never imports huggingface_hub, so the other test
modules are free to configure it themselves.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.hub_server import HubServer, card_metadata, client_env, free_port

ROOT = Path(__file__).resolve().parents[1]

needs_hub_client = pytest.mark.skipif(
    importlib.util.find_spec("huggingface_hub") is None, reason="huggingface_hub is not installed"
)


@pytest.fixture
def hub():
    server = HubServer().start()
    yield server
    server.stop()


def run_client(script: str, hub_url: str, hf_home: Path, offline: bool = False, **values) -> dict:
    """Run `script` with a fresh interpreter pointed at `hub_url`; `values` arrive as the dict `ARGS`.
    The script prints one JSON line last, which is returned."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}  # no stray HF_HUB_OFFLINE etc.
    env.update(client_env(hub_url, str(hf_home), offline=offline))
    code = f"ARGS = {json.dumps(values)!r}\nimport json\nARGS = json.loads(ARGS)\n" + textwrap.dedent(script)
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"client script failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


ONLINE_SCRIPT = """
import os, tempfile
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

api = HfApi()
repo = api.create_repo("alice/starry").repo_id
assert api.create_repo(repo, exist_ok=True).repo_id == repo  # 409 is tolerated
api.create_repo("alice/untagged")

folder = tempfile.mkdtemp()
with open(os.path.join(folder, "README.md"), "w") as f:
    f.write("---\\ntags: [fastnst, style-transfer]\\nlicense: mit\\n---\\n# Starry\\n")
with open(os.path.join(folder, "notes.txt"), "w") as f:
    f.write("first")
with open(os.path.join(folder, "weights.bin"), "wb") as f:
    f.write(bytes(ARGS["blob"]))
first = api.upload_folder(repo_id=repo, folder_path=folder, commit_message="first").oid
second = api.upload_file(path_or_fileobj=b"second", path_in_repo="notes.txt", repo_id=repo).oid
assert first != second

out = {"first": first, "second": second}
out["by_branch"] = open(hf_hub_download(repo, "notes.txt")).read()
out["by_sha"] = open(hf_hub_download(repo, "notes.txt", revision=first)).read()
snapshot = snapshot_download(repo)
out["snapshot"] = sorted(os.listdir(snapshot))
out["snapshot_blob_ok"] = open(os.path.join(snapshot, "weights.bin"), "rb").read() == bytes(ARGS["blob"])
info = api.model_info(repo)
out["sha"] = info.sha
out["siblings"] = {s.rfilename: (s.size, s.lfs is not None) for s in info.siblings}
out["files"] = api.list_repo_files(repo)
out["fastnst_models"] = [m.id for m in api.list_models(filter="fastnst")]
out["tags"] = [m.tags for m in api.list_models(search="starry")][0]

for call, error in [
    (lambda: hf_hub_download(repo, "missing.txt"), EntryNotFoundError),
    (lambda: hf_hub_download("alice/nobody", "notes.txt"), RepositoryNotFoundError),
    (lambda: hf_hub_download(repo, "notes.txt", revision="no-such-branch"), RevisionNotFoundError),
    (lambda: api.model_info("alice/nobody"), RepositoryNotFoundError),
]:
    try:
        call()
        raise AssertionError(f"expected {error.__name__}")
    except error:
        pass
print(json.dumps(out))
"""

OFFLINE_SCRIPT = """
from huggingface_hub import hf_hub_download
print(json.dumps({
    "by_branch": open(hf_hub_download("alice/starry", "notes.txt")).read(),
    "by_sha": open(hf_hub_download("alice/starry", "notes.txt", revision=ARGS["first"])).read(),
}))
"""


@needs_hub_client
def test_real_client_round_trip_then_offline_cache(hub, tmp_path):
    blob = list(os.urandom(20_000))  # > 10 kB => the LFS path (batch, PUT, verify)
    out = run_client(ONLINE_SCRIPT, hub.url, tmp_path / "hf", blob=blob)

    assert out["by_branch"] == "second" and out["by_sha"] == "first"  # old revisions stay downloadable by sha
    assert out["sha"] == out["second"]
    assert out["snapshot"] == [".gitattributes", "README.md", "notes.txt", "weights.bin"]
    assert out["snapshot_blob_ok"]
    assert out["siblings"]["weights.bin"] == [20_000, True] and out["siblings"]["notes.txt"] == [6, False]
    assert out["files"] == [".gitattributes", "README.md", "notes.txt", "weights.bin"]
    assert out["fastnst_models"] == ["alice/starry"]
    assert "fastnst" in out["tags"] and "style-transfer" in out["tags"]
    assert ("PUT", f"/_lfs/{hashlib.sha256(bytes(blob)).hexdigest()}") in hub.requests  # went through LFS

    hub.stop()
    with pytest.raises(OSError):  # nothing listens any more
        socket.create_connection(("127.0.0.1", hub.port), timeout=1).close()
    cached = run_client(OFFLINE_SCRIPT, hub.url, tmp_path / "hf", offline=True, first=out["first"])
    assert cached == {"by_branch": "second", "by_sha": "first"}


MIXIN_SCRIPT = """
import torch
from torch import nn
from huggingface_hub import PyTorchModelHubMixin

class Tiny(nn.Module, PyTorchModelHubMixin, tags=["fastnst"]):
    def __init__(self, *, width: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 1)

torch.manual_seed(0)
model = Tiny(width=5)
model.push_to_hub("alice/tiny")
loaded = Tiny.from_pretrained("alice/tiny")
same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
print(json.dumps({"same": same, "width": loaded.conv.out_channels}))
"""


@needs_hub_client
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_pytorch_model_hub_mixin_round_trip(hub, tmp_path):
    out = run_client(MIXIN_SCRIPT, hub.url, tmp_path / "hf")
    assert out == {"same": True, "width": 5}
    repo = hub.get_repo("model", "alice/tiny")
    files = repo.commits[repo.branches["main"]].files
    assert files["model.safetensors"].lfs and not files["config.json"].lfs
    assert json.loads(files["config.json"].data) == {"width": 5}


def _get(url: str, headers: dict | None = None):
    """(status, headers, body) without raising on HTTP errors."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_resolve_headers_ranges_and_errors(hub):
    data = bytes(range(256)) * 100
    first = hub.commit("bob/seeded", {"model.safetensors": data, "config.json": b"{}"})
    hub.commit("bob/seeded", {"config.json": b'{"v": 2}'})

    status, headers, body = _get(f"{hub.url}/bob/seeded/resolve/main/model.safetensors")
    assert status == 200 and body == data
    assert headers["X-Linked-Size"] == str(len(data))
    assert headers["X-Linked-Etag"] == headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    status, headers, body = _get(f"{hub.url}/bob/seeded/resolve/{first}/config.json", {"Range": "bytes=0-0"})
    assert (status, body, headers["Content-Range"], headers["X-Repo-Commit"]) == (206, b"{", "bytes 0-0/2", first)
    status, _, body = _get(f"{hub.url}/bob/seeded/resolve/main/model.safetensors", {"Range": "bytes=-3"})
    assert (status, body) == (206, data[-3:])

    for url, code in [
        ("/bob/seeded/resolve/main/nope.txt", "EntryNotFound"),
        ("/bob/nobody/resolve/main/config.json", "RepoNotFound"),
        ("/bob/seeded/resolve/v9/config.json", "RevisionNotFound"),
    ]:
        status, headers, _ = _get(hub.url + url)
        assert (status, headers["X-Error-Code"]) == (404, code)

    status, _, body = _get(f"{hub.url}/api/not-a-thing")  # unknown routes: 404 + JSON error (+ a stderr line)
    assert status == 404 and "error" in json.loads(body)
    assert ("GET", "/api/not-a-thing") in hub.requests


def test_card_metadata_parser():
    assert card_metadata(b"---\ntags:\n- fastnst\n- 'oil'\nlicense: mit\n---\nbody") == {
        "tags": ["fastnst", "oil"], "license": "mit"}
    assert card_metadata(b"---\r\ntags: [fastnst, \"ink\"]\r\n---\r\n")["tags"] == ["fastnst", "ink"]
    assert card_metadata(b"# no front matter") == {} and card_metadata(None) == {}


def test_standalone_process_prints_ready():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.hub_server", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        status, _, body = _get(f"http://127.0.0.1:{port}/api/models")
        assert (status, json.loads(body)) == (200, [])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
