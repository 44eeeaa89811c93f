"""A local stand-in for the Hugging Face Hub, so tests can drive the *real* `huggingface_hub` client offline.

Point the client at it with `HF_ENDPOINT` (see `client_env`) *before* `huggingface_hub` is imported: the client
reads its constants at import time. Uploads must also set `HF_HUB_DISABLE_XET=1`, otherwise the client switches to
the Xet protocol on its own (it only checks whether `hf_xet` is installed), which this server does not speak.

Only the standard library is used on purpose: importing `huggingface_hub` here would freeze its endpoint constants
in whatever process imports this module.

    hub = HubServer(); hub.start(); ...; hub.stop()       # in-process, background thread
    python -m tests.hub_server --port 8765                 # standalone, prints "ready" once listening

What it models (enough for `create_repo`, `upload_folder`/`upload_file`/`create_commit`, `hf_hub_download`,
`snapshot_download`, `model_info`, `list_repo_files`/`list_repo_tree`, `list_models`, branches, tags, PRs and the
`PyTorchModelHubMixin` round trip): repos hold immutable commits (sha -> {path: blob}) that build on their parent,
so any old revision stays downloadable by sha. Everything lives in memory.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import re
import socket
import sys
import threading
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

# Files the (real) Hub stores with LFS: its default .gitattributes covers these extensions, and the client sends
# anything above 10 MB as LFS anyway. A much lower size threshold makes tests exercise the LFS path cheaply.
LFS_EXTENSIONS = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".png", ".jpg", ".jpeg", ".webp", ".gz")
LFS_THRESHOLD = 10_000  # bytes
DEFAULT_USER = "user"  # namespace for `create_repo("name")` without an owner, and what /whoami-v2 answers
REPO_TYPES = ("model", "dataset", "space")
INITIAL_GITATTRIBUTES = b"".join(b"*%s filter=lfs diff=lfs merge=lfs -text\n" % e.encode() for e in LFS_EXTENSIONS)
SHA1_RE = re.compile(r"[0-9a-f]{7,40}")


def free_port() -> int:
    """A TCP port that was free a moment ago (for tests that must know HF_ENDPOINT before starting the server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_env(url: str, hf_home: str, offline: bool = False) -> dict[str, str]:
    """Environment variables a subprocess needs so `huggingface_hub` talks to this server (merge into os.environ)."""
    env = {
        "HF_ENDPOINT": url,
        "HF_HOME": str(hf_home),
        "HF_HUB_DISABLE_XET": "1",  # no Xet uploads: plain LFS through this server
        "HF_TOKEN": "hf_local_test_token",  # any token: the server does not check it, the client needs one to upload
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "0",
    }
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def _now() -> str:
    # The client parses exactly this shape ('%Y-%m-%dT%H:%M:%S.%fZ').
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Blob:
    """File content plus the identifiers the Hub reports for it."""

    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:  # what git stores in place of an LFS file
        return b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
            self.sha256.encode(), len(self.data))

    @property
    def oid(self) -> str:  # git blob sha1 of what git stores (the pointer, for LFS files)
        stored = self.pointer if self.lfs else self.data
        return hashlib.sha1(b"blob %d\0" % len(stored) + stored).hexdigest()

    def entry(self, path: str) -> dict:
        """Tree / paths-info entry."""
        out = {"type": "file", "oid": self.oid, "size": len(self.data), "path": path}
        if self.lfs:
            out["lfs"] = {"oid": self.sha256, "size": len(self.data), "pointerSize": len(self.pointer)}
        return out


@dataclass
class Commit:
    sha: str
    parent: str | None
    files: dict[str, Blob]
    title: str
    message: str
    date: str = field(default_factory=_now)


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # also holds PR refs, named "refs/pr/N"
    tags: dict[str, str] = field(default_factory=dict)
    created: str = field(default_factory=_now)
    prs: int = 0

    def resolve(self, rev: str) -> str:
        """Branch, tag, full or abbreviated commit sha -> commit sha (RevisionNotFound otherwise)."""
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            return self.tags[rev]
        if SHA1_RE.fullmatch(rev):
            matches = [sha for sha in list(self.commits) if sha.startswith(rev)]
            if len(matches) == 1:
                return matches[0]
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")


class HubError(Exception):
    """An error answer; `code` goes to X-Error-Code, which is what the client maps to its exception classes."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None,
                 body: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.body = {"error": message, **(body or {})}


def card_metadata(readme: bytes | None) -> dict:
    """The YAML front matter of a model card, for the flat subset cards use (`key: value`, `key: [a, b]`, block
    lists). Enough for `tags:`, `library_name:`, `license:`; nested mappings are not modelled."""
    if not readme:
        return {}
    match = re.match(r"---\n(.*?)\n---[ \t]*(\n|$)", readme.decode("utf-8", "replace").replace("\r\n", "\n"), re.S)
    if not match:
        return {}

    def scalar(text: str) -> str:
        return text.strip().strip("'\"")

    meta: dict = {}
    key = None
    for line in match.group(1).split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        item = re.match(r"\s*-\s+(.*)$", line)
        if item and key is not None:
            meta[key] = (meta[key] if isinstance(meta.get(key), list) else []) + [scalar(item.group(1))]
        elif not line[0].isspace() and ":" in line:
            key, _, value = (part.strip() for part in line.partition(":"))
            if value.startswith("[") and value.endswith("]"):
                meta[key] = [scalar(v) for v in value[1:-1].split(",") if v.strip()]
            elif value:
                meta[key] = scalar(value)
    return meta


class HubServer:
    """The Hub state plus the HTTP server around it. Thread-safe: every state change holds `self.lock`."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", username: str = DEFAULT_USER, verbose: bool = False):
        self.host, self.port, self.username, self.verbose = host, port, username, verbose
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content, uploaded before the commit that uses it
        self.requests: list[tuple[str, str]] = []  # (method, unquoted path), for debugging and assertions
        self.lock = threading.RLock()
        self._counter = itertools.count()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> "HubServer":
        self._httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.hub = self  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop listening *and* drop open keep-alive connections, so the port truly stops answering."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        with self.lock:
            for conn in list(self._connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- state (also usable directly by tests to seed repos without a client) --------------------------------
    def create_repo(self, repo_id: str, repo_type: str = "model", private: bool = False) -> Repo:
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise HubError(409, f"You already created this {repo_type} repo")
            repo = self.repos[(repo_type, repo_id)] = Repo(repo_type, repo_id, private)
            # Like the real Hub, a new repo starts with one commit holding .gitattributes, so "main" always exists.
            self._new_commit(repo, None, {".gitattributes": Blob(INITIAL_GITATTRIBUTES, False)}, "initial commit", "")
            repo.branches["main"] = next(iter(repo.commits))
            return repo

    def commit(self, repo_id: str, files: dict[str, bytes], message: str = "seed", branch: str = "main",
               repo_type: str = "model") -> str:
        """Seed helper: commit `files` (created as a model repo if needed); returns the commit sha."""
        with self.lock:
            repo = self.repos.get((repo_type, repo_id)) or self.create_repo(repo_id, repo_type)
            ops = [("add", path, Blob(data, _wants_lfs(path, len(data)))) for path, data in files.items()]
            return self._apply_commit(repo, branch, ops, message, "")

    def get_repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository not found: {repo_type} {repo_id}", "RepoNotFound")
        return repo

    def _new_commit(self, repo: Repo, parent: str | None, files: dict[str, Blob], title: str, message: str) -> str:
        seed = f"{repo.repo_id}\n{parent}\n{title}\n{next(self._counter)}\n" + "".join(
            f"{p}:{b.oid}\n" for p, b in sorted(files.items()))
        sha = hashlib.sha1(seed.encode()).hexdigest()
        repo.commits[sha] = Commit(sha, parent, files, title, message)
        return sha

    def _apply_commit(self, repo: Repo, branch: str, ops: list, title: str, message: str,
                      parent_commit: str | None = None) -> str:
        with self.lock:
            if branch not in repo.branches:
                raise HubError(404 if branch not in repo.tags else 400,
                               f"Invalid rev id: {branch} (commits go to a branch)", "RevisionNotFound")
            head = repo.branches[branch]
            if parent_commit and not head.startswith(parent_commit):
                raise HubError(412, f"A commit has happened since. Please refresh and try again. ({head})")
            files = dict(repo.commits[head].files)
            for kind, path, blob in ops:
                if kind == "add":
                    files[path] = blob
                elif kind == "delete_file":
                    if files.pop(path, None) is None:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                else:  # delete_folder
                    for name in [n for n in files if n.startswith(path.rstrip("/") + "/")]:
                        del files[name]
            sha = self._new_commit(repo, head, files, title, message)
            repo.branches[branch] = sha
            return sha

    def info(self, repo: Repo, sha: str) -> dict:
        """Repo info JSON (as /api/models/{id} answers, with siblings carrying sizes and LFS details)."""
        commit = repo.commits[sha]
        card = card_metadata(commit.files["README.md"].data if "README.md" in commit.files else None)
        tags = card.get("tags") if isinstance(card.get("tags"), list) else [t for t in [card.get("tags")] if t]
        if isinstance(card.get("library_name"), str) and card["library_name"] not in tags:
            tags = [*tags, card["library_name"]]  # the real Hub lists the library among the tags too
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling = {"rfilename": path, "size": len(blob.data), "blobId": blob.oid}
            if blob.lfs:
                sibling["lfs"] = {"size": len(blob.data), "sha256": blob.sha256, "pointerSize": len(blob.pointer)}
            siblings.append(sibling)
        return {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id, "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0], "sha": sha, "lastModified": commit.date, "createdAt": repo.created,
            "private": repo.private, "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": tags,
            "library_name": card.get("library_name"), "pipeline_tag": card.get("pipeline_tag"),
            "cardData": card or None, "siblings": siblings,
            "usedStorage": sum(len(b.data) for b in commit.files.values()),
        }


def _wants_lfs(path: str, size: int) -> bool:
    return size > LFS_THRESHOLD or path.lower().endswith(LFS_EXTENSIONS)


def _tree(files: dict[str, Blob], prefix: str, recursive: bool) -> list[dict]:
    """Entries under `prefix` (one level, or all levels), folders included, like /api/models/{id}/tree."""
    prefix = prefix.strip("/")
    if prefix in files:
        return [files[prefix].entry(prefix)]
    under = {p: b for p, b in files.items() if not prefix or p.startswith(prefix + "/")}
    if prefix and not under:
        raise HubError(404, f"Entry not found: {prefix}", "EntryNotFound")
    start = len(prefix) + 1 if prefix else 0
    entries: dict[str, dict] = {}
    for path, blob in sorted(under.items()):
        parts = path[start:].split("/")
        for depth in range(1, len(parts)):  # the folders on the way down
            folder = path[:start] + "/".join(parts[:depth])
            if recursive or depth == 1:
                oid = hashlib.sha1(folder.encode()).hexdigest()  # stable stand-in for a git tree sha
                entries.setdefault(folder, {"type": "directory", "oid": oid, "size": 0, "path": folder})
        if recursive or len(parts) == 1:
            entries[path] = blob.entry(path)
    return list(entries.values())


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so the client can keep connections alive; every answer therefore carries a Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "LocalHub/1.0"

    @property
    def hub(self) -> HubServer:
        return self.server.hub  # type: ignore[attr-defined]

    def setup(self):
        super().setup()
        with self.hub.lock:
            self.hub._connections.add(self.connection)

    def finish(self):
        with self.hub.lock:
            self.hub._connections.discard(self.connection)
        super().finish()

    def log_message(self, format, *args):  # silence the default per-request log unless asked for
        if self.hub.verbose:
            super().log_message(format, *args)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = lambda self: self._handle()

    def _read_body(self) -> bytes:
        """Always consume the whole body (or keep-alive breaks), plain or chunked."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes | dict | list = b"", headers: dict | None = None,
              content_type: str = "application/json", length: int | None = None) -> None:
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        body = self._read_body()
        url = urlsplit(self.path)
        # Split before unquoting: the client quotes revisions with safe="" so "refs/pr/1" stays one segment.
        segs = [unquote(s) for s in url.path.strip("/").split("/")]
        self.hub.requests.append((self.command, unquote(url.path)))
        try:
            status, payload, headers = self._route(self.command, segs, parse_qs(url.query), body)
            if status == 0:
                return  # the route answered by itself (file download)
            self._send(status, payload, headers)
        except HubError as err:
            headers = {**err.headers, "X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            if err.status == 404 and err.code is None:
                print(f"[hub_server] unhandled request: {self.command} {self.path}", file=sys.stderr, flush=True)
            self._send(err.status, err.body, headers)
        except Exception:  # a bug here should be loud in the test output, not a hang
            traceback.print_exc()
            self._send(500, {"error": "internal error in tests/hub_server.py"})

    def _route(self, method: str, segs: list[str], query: dict, body: bytes):
        hub = self.hub
        base = f"http://{self.headers.get('Host', f'{hub.host}:{hub.port}')}"
        if segs[:1] == ["api"]:
            return self._api(method, segs[1:], query, body, base)
        if segs[:1] == ["_lfs"] and len(segs) >= 2:
            return self._lfs_transfer(method, segs[1], segs[2:], body)
        repo_type = "model"
        if segs and segs[0] in ("datasets", "spaces"):
            repo_type, segs = segs[0][:-1], segs[1:]
        if len(segs) >= 5 and segs[-4:] == ["info", "lfs", "objects", "batch"] and method == "POST":
            return self._lfs_batch(json.loads(body or b"{}"), base)
        for i in (2, 1):  # "{ns}/{name}/resolve/..." or legacy "{name}/resolve/..."
            if len(segs) > i + 2 and segs[i] == "resolve" and method in ("GET", "HEAD"):
                repo = hub.get_repo(repo_type, "/".join(segs[:i]))
                return self._resolve(repo, segs[i + 1], "/".join(segs[i + 2:]))
        raise HubError(404, f"Not found: {method} /{'/'.join(segs)}")

    def _api(self, method: str, segs: list[str], query: dict, body: bytes, base: str):
        hub = self.hub
        data = json.loads(body) if body and self.headers.get("Content-Type", "").startswith("application/json") else {}
        if segs == ["whoami-v2"]:
            return 200, {"type": "user", "name": hub.username, "fullname": hub.username, "orgs": [],
                         "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}}, {}
        if segs == ["validate-yaml"] and method == "POST":
            return 200, {"errors": [], "warnings": []}, {}
        if segs[:1] == ["repos"] and method == "POST" and len(segs) == 2:
            repo_type = data.get("type") or "model"
            repo_id = f"{data.get('organization') or hub.username}/{data['name']}"
            prefix = "" if repo_type == "model" else f"{repo_type}s/"
            if segs[1] == "create":
                private = data.get("private") or data.get("visibility") == "private"
                answer = {"url": f"{base}/{prefix}{repo_id}", "name": repo_id, "id": repo_id}
                try:
                    hub.create_repo(repo_id, repo_type, bool(private))
                except HubError as err:  # exist_ok=True accepts the 409 and then reads "url" from its body
                    raise HubError(409, err.message, body=answer) from None
                return 200, answer, {}
            if segs[1] == "delete":
                with hub.lock:
                    hub.get_repo(repo_type, repo_id)
                    del hub.repos[(repo_type, repo_id)]
                return 200, b"", {}
        if len(segs) == 1 and segs[0] in ("models", "datasets", "spaces") and method == "GET":
            return 200, self._list(segs[0][:-1], query), {}
        if len(segs) >= 3 and segs[0] in ("models", "datasets", "spaces"):
            repo = hub.get_repo(segs[0][:-1], f"{segs[1]}/{segs[2]}")
            return self._repo_api(method, repo, segs[3:], query, body, data, base)
        raise HubError(404, f"Not found: {method} /api/{'/'.join(segs)}")

    def _list(self, repo_type: str, query: dict) -> list[dict]:
        """list_models/list_datasets: every `filter` must be a tag; `search` is a substring of the id."""
        hub = self.hub
        filters = [f for value in query.get("filter", []) for f in value.split(",")]
        search = (query.get("search") or [""])[0].lower()
        author = (query.get("author") or [None])[0]
        with hub.lock:
            infos = [hub.info(repo, repo.branches["main"]) for (kind, _), repo in hub.repos.items()
                     if kind == repo_type and "main" in repo.branches]
        infos = [i for i in infos if all(f in i["tags"] or f == i["library_name"] for f in filters)
                 and search in i["id"].lower() and (author is None or i["author"] == author)]
        limit = query.get("limit")
        return infos[: int(limit[0])] if limit else infos

    def _repo_api(self, method: str, repo: Repo, rest: list[str], query: dict, body: bytes, data: dict, base: str):
        hub = self.hub
        action, arg = (rest[0] if rest else ""), "/".join(rest[1:])
        if method == "GET" and action in ("", "revision"):
            sha = repo.resolve(arg or "main")
            return 200, hub.info(repo, sha), {}
        if method == "GET" and action == "tree":
            revision, _, path = arg.partition("/")
            recursive = (query.get("recursive") or ["false"])[0].lower() in ("1", "true")
            return 200, _tree(repo.commits[repo.resolve(revision)].files, path, recursive), {}
        if method == "POST" and action == "paths-info":
            files = repo.commits[repo.resolve(arg)].files
            out = []
            for path in (parse_qs(body.decode()).get("paths", []) if body else []):  # form-encoded, repeated key
                path = path.strip("/")
                if path in files:
                    out.append(files[path].entry(path))
                elif any(name.startswith(path + "/") for name in files):
                    out.append({"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "path": path})
            return 200, out, {}
        if method == "GET" and action == "refs":
            def ref(name, sha, full):
                return {"name": name, "ref": full, "targetCommit": sha}
            return 200, {
                "branches": [ref(n, s, f"refs/heads/{n}") for n, s in repo.branches.items()
                             if not n.startswith("refs/")],
                "tags": [ref(n, s, f"refs/tags/{n}") for n, s in repo.tags.items()], "converts": [],
                "pullRequests": [ref(n, s, n) for n, s in repo.branches.items() if n.startswith("refs/pr/")],
            }, {}
        if method == "GET" and action == "commits":
            out, sha = [], repo.resolve(arg or "main")
            while sha:
                c = repo.commits[sha]
                out.append({"id": c.sha, "title": c.title, "message": c.message, "date": c.date,
                            "authors": [{"user": hub.username}]})
                sha = c.parent
            return 200, out, {}
        if method == "POST" and action == "preupload":
            files = repo.commits[repo.resolve(arg)].files
            answer = []
            for f in data.get("files", []):
                existing = files.get(f["path"])
                remote_oid = None if existing is None else (existing.sha256 if existing.lfs else existing.oid)
                mode = "lfs" if _wants_lfs(f["path"], int(f.get("size", 0))) else "regular"
                answer.append({"path": f["path"], "uploadMode": mode, "shouldIgnore": False, "oid": remote_oid})
            return 200, {"files": answer, "commitOid": repo.resolve(arg)}, {}
        if method == "POST" and action == "commit":
            return self._commit(repo, arg, query, body, base)
        if action in ("branch", "tag") and method in ("POST", "DELETE"):
            refs = repo.branches if action == "branch" else repo.tags
            with hub.lock:
                name = arg if action == "branch" else data.get("tag", arg)
                if method == "DELETE":
                    if refs.pop(arg, None) is None:
                        raise HubError(404, f"Invalid rev id: {arg}", "RevisionNotFound")
                    return 200, b"", {}
                if name in refs:
                    raise HubError(409, f"Reference already exists: {name}")
                start = data.get("startingPoint", "main") if action == "branch" else arg
                refs[name] = repo.resolve(start)
            return 200, b"", {}
        if action.startswith("xet-"):  # the client picks Xet by itself whenever hf_xet is installed
            print("[hub_server] the client asked for Xet: set HF_HUB_DISABLE_XET=1 before importing huggingface_hub",
                  file=sys.stderr, flush=True)
            raise HubError(501, "tests/hub_server.py does not speak Xet: set HF_HUB_DISABLE_XET=1")
        raise HubError(404, f"Not found: {method} /api/{repo.repo_type}s/{repo.repo_id}/{'/'.join(rest)}")

    def _commit(self, repo: Repo, branch: str, query: dict, body: bytes, base: str):
        """NDJSON commit: a header line, then one line per added (inline or LFS) or deleted file."""
        hub = self.hub
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = next((l["value"] for l in lines if l["key"] == "header"), {})
        ops = []
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "file":
                ops.append(("add", value["path"], Blob(base64.b64decode(value["content"]), False)))
            elif key == "lfsFile":
                if value["oid"] not in hub.lfs_objects:
                    raise HubError(422, f"LFS object {value['oid']} for {value['path']} was never uploaded")
                ops.append(("add", value["path"], Blob(hub.lfs_objects[value["oid"]], True)))
            elif key in ("deletedFile", "deletedFolder"):
                ops.append(("delete_file" if key == "deletedFile" else "delete_folder", value["path"], None))
            elif key != "header":
                raise HubError(400, f"commit operation {key!r} is not supported by tests/hub_server.py")
        pr_url = None
        with hub.lock:
            if (query.get("create_pr") or ["0"])[0] in ("1", "true"):
                repo.prs += 1
                pr_branch = f"refs/pr/{repo.prs}"
                repo.branches[pr_branch] = repo.resolve(branch)
                branch, pr_url = pr_branch, f"{base}/{repo.repo_id}/discussions/{repo.prs}"
            sha = hub._apply_commit(repo, branch, ops, header.get("summary", ""), header.get("description", ""),
                                    header.get("parentCommit"))
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        return 200, {"commitUrl": f"{base}/{prefix}{repo.repo_id}/commit/{sha}", "commitOid": sha,
                     "pullRequestUrl": pr_url, "success": True}, {}

    def _lfs_batch(self, request: dict, base: str):
        """Git LFS batch API: point each missing object at our own /_lfs/{oid} PUT (+ verify) URL."""
        objects = []
        for obj in request.get("objects", []):
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs_objects:  # no "actions" tells the client it is already there
                entry["actions"] = {"upload": {"href": f"{base}/_lfs/{obj['oid']}"},
                                    "verify": {"href": f"{base}/_lfs/{obj['oid']}/verify"}}
            objects.append(entry)
        return 200, {"transfer": "basic", "objects": objects}, {"Content-Type": "application/vnd.git-lfs+json"}

    def _lfs_transfer(self, method: str, oid: str, rest: list[str], body: bytes):
        if method == "PUT" and not rest:
            if hashlib.sha256(body).hexdigest() != oid:
                raise HubError(400, f"sha256 of the uploaded bytes does not match oid {oid}")
            with self.hub.lock:
                self.hub.lfs_objects[oid] = body
            return 200, b"", {"ETag": f'"{hashlib.md5(body).hexdigest()}"'}
        if method == "POST" and rest == ["verify"]:
            if oid not in self.hub.lfs_objects:
                raise HubError(404, f"LFS object {oid} not found", "EntryNotFound")
            return 200, {"success": True}, {}
        raise HubError(404, f"Not found: {method} /_lfs/{oid}/{'/'.join(rest)}")

    def _resolve(self, repo: Repo, revision: str, path: str):
        """File download (GET) and metadata (HEAD): the headers are what `hf_hub_download` caches by."""
        sha = repo.resolve(revision)
        blob = repo.commits[sha].files.get(path)
        if blob is None:  # X-Repo-Commit lets the client cache the absence for this commit
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        size = len(blob.data)
        headers = {"X-Repo-Commit": sha, "Accept-Ranges": "bytes",
                   "ETag": f'"{blob.sha256 if blob.lfs else blob.oid}"'}
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(size)})
        status, start, end = 200, 0, size - 1
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start, end = int(match.group(1)), min(int(match.group(2) or size - 1), size - 1)
            else:  # suffix range "bytes=-N": the last N bytes
                start = max(size - int(match.group(2)), 0)
            if start >= size or start > end:
                raise HubError(416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"})
            status, headers["Content-Range"] = 206, f"bytes {start}-{end}/{size}"
        chunk = blob.data[start:end + 1]
        self._send(status, chunk, headers, "application/octet-stream")
        return 0, None, None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Hugging Face Hub stand-in for tests.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    hub = HubServer(port=args.port, host=args.host, verbose=args.verbose).start()
    print(f"[hub_server] listening on {hub.url}", file=sys.stderr, flush=True)
    print("ready", flush=True)  # parent processes wait for this line
    try:
        hub._thread.join()
    except KeyboardInterrupt:
        hub.stop()


if __name__ == "__main__":
    main()
