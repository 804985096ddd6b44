"""A small Hugging Face Hub-compatible server for tests (no internet needed).

The unmodified ``huggingface_hub`` client (pinned 2.4.0) talks to it through ``endpoint=`` or
``HF_ENDPOINT``. It keeps model repos in memory as git-like commits and implements the routes the
client uses for:

- ``create_repo`` (``POST /api/repos/create``; 409 when the repo exists, so ``exist_ok`` works),
- ``upload_folder`` / ``upload_file`` / ``create_commit`` with regular files: ``/api/validate-yaml``
  (README metadata), ``/api/models/{id}/preupload/{rev}`` (always answers upload mode
  ``"regular"``, so files arrive base64-encoded inside the ndjson commit: no LFS, no Xet) and
  ``/api/models/{id}/commit/{rev}`` (``file``, ``deletedFile``, ``deletedFolder``; ``parentCommit``),
- ``create_tag`` / ``delete_tag``, ``list_repo_refs``, ``list_repo_commits``,
- ``model_info`` / ``repo_info`` (with or without revision), ``list_repo_files`` / ``list_repo_tree``,
- ``hf_hub_download`` / ``snapshot_download`` / ``ModelCard.load``
  (``HEAD`` and ``GET /{id}/resolve/{rev}/{path}`` with ``X-Repo-Commit`` and ``ETag``),
- ``whoami``.

Errors carry the headers the client maps to its exception classes: ``X-Error-Code`` =
``RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``, and 401 "Invalid credentials in
Authorization header" for a bad token. Private repos answer 404 ``RepoNotFound`` to anyone but
their owner, as the Hub does.

Limits: model repos only, revisions without ``/``, no LFS/Xet uploads, no pull requests,
no pagination (one page).

Use::

    state = HubState(tokens={"hf_alice": "alice"})
    with serve(create_app(state)) as endpoint:   # "http://127.0.0.1:<free port>"
        HfApi(endpoint=endpoint, token="hf_alice").create_repo("alice/demo")
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import uvicorn
import yaml
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

__all__ = ["HubState", "create_app", "git_blob_oid", "serve"]

_COMMIT_OID = re.compile(r"^[0-9a-f]{40}$")


def git_blob_oid(data: bytes) -> str:
    """The git blob id of ``data``: what the Hub reports as a regular file's ``oid``/``ETag``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Commit:
    oid: str
    parent: str | None
    files: dict[str, bytes]
    title: str
    message: str
    author: str
    date: str


@dataclass
class _Repo:
    repo_id: str
    private: bool
    created: str
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> _Commit | None:
        """A branch, a tag, or a full commit id (as the Hub, short ids are not revisions)."""
        oid = self.branches.get(revision) or self.tags.get(revision)
        if oid is None and _COMMIT_OID.match(revision):
            oid = revision
        return self.commits.get(oid) if oid else None


class HubState:
    """In-memory repos and the accepted tokens (``{token: user name}``)."""

    def __init__(self, tokens: dict[str, str] | None = None) -> None:
        self.tokens = dict(tokens or {})
        self.repos: dict[str, _Repo] = {}
        self.lock = threading.Lock()
        self._counter = itertools.count()
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for tests

    def new_commit(self, repo: _Repo, parent: _Commit | None, files: dict[str, bytes], title: str,
                   message: str, author: str) -> _Commit:
        seed = json.dumps([repo.repo_id, parent.oid if parent else None, title, next(self._counter),
                           sorted((p, git_blob_oid(b)) for p, b in files.items())])
        commit = _Commit(hashlib.sha1(seed.encode()).hexdigest(), parent.oid if parent else None,
                         files, title, message, author, _now())
        repo.commits[commit.oid] = commit
        return commit


class _HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None, body: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.body = body or {}


def _card_data(files: dict[str, bytes]) -> dict | None:
    readme = files.get("README.md", b"").decode("utf-8", "replace")
    match = re.match(r"^\s*---\s*\n(.*?)\n---\s*\n", readme, flags=re.DOTALL)
    if not match:
        return None
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def create_app(state: HubState | None = None) -> FastAPI:
    """The FastAPI app serving ``state`` (a fresh empty one by default) as a Hub."""
    state = state if state is not None else HubState()
    app = FastAPI(title="ser test Hub")
    app.state.hub = state

    @app.middleware("http")
    async def _record(request: Request, call_next):
        state.requests.append((request.method, request.url.path))
        return await call_next(request)

    @app.exception_handler(_HubError)
    async def _hub_error(request: Request, err: _HubError) -> Response:
        return _error_response(err)

    def _error_response(err: _HubError) -> Response:
        headers = {"X-Error-Message": err.message, **err.headers}
        if err.code:
            headers["X-Error-Code"] = err.code
        return JSONResponse({"error": err.message, **err.body}, status_code=err.status, headers=headers)

    def user_of(request: Request, *, required: bool) -> str | None:
        auth = request.headers.get("authorization", "")
        if not auth:
            if required:
                raise _HubError(401, "You must be authenticated to do this: pass a token")
            return None
        token = auth.removeprefix("Bearer ").strip()
        if token not in state.tokens:
            raise _HubError(401, "Invalid credentials in Authorization header")
        return state.tokens[token]

    def repo_for_read(request: Request, repo_id: str) -> _Repo:
        user = user_of(request, required=False)
        repo = state.repos.get(repo_id)
        if repo is None or (repo.private and user != repo_id.split("/")[0]):
            # The Hub does not tell "private" from "missing" to outsiders.
            raise _HubError(401 if user is None else 404, "Repository not found", "RepoNotFound")
        return repo

    def repo_for_write(request: Request, repo_id: str) -> tuple[_Repo, str]:
        user = user_of(request, required=True)
        repo = state.repos.get(repo_id)
        if repo is None or (repo.private and user != repo_id.split("/")[0]):
            raise _HubError(404, "Repository not found", "RepoNotFound")
        if user != repo_id.split("/")[0]:
            raise _HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo, user

    def commit_for(repo: _Repo, revision: str) -> _Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    # -- account ---------------------------------------------------------------------------------
    @app.get("/api/whoami-v2")
    def whoami(request: Request):
        user = user_of(request, required=True)
        return {"type": "user", "id": user, "name": user, "fullname": user, "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}}

    # -- repos -----------------------------------------------------------------------------------
    @app.post("/api/repos/create")
    async def create_repo(request: Request):
        user = user_of(request, required=True)
        payload = await request.json()
        if payload.get("type", "model") != "model":
            raise _HubError(400, "This test server only hosts model repos")
        namespace = payload.get("organization") or user
        repo_id = f"{namespace}/{payload['name']}"
        with state.lock:
            if repo_id in state.repos:
                # The Hub's 409 carries the url: create_repo(exist_ok=True) returns it.
                raise _HubError(409, "You already created this model repo",
                                body={"url": f"{base(request)}/{repo_id}"})
            if namespace != user:
                raise _HubError(403, f"You don't have the rights to create a repo under {namespace}")
            private = payload.get("visibility") == "private" or bool(payload.get("private"))
            repo = _Repo(repo_id, private, _now())
            first = state.new_commit(repo, None, {".gitattributes": b"*.skops filter=lfs diff=lfs merge=lfs -text\n"},
                                     "initial commit", "", user)
            repo.branches["main"] = first.oid
            state.repos[repo_id] = repo
        return {"url": f"{base(request)}/{repo_id}", "name": repo_id, "id": repo_id}

    @app.post("/api/validate-yaml")
    async def validate_yaml(request: Request):
        payload = await request.json()
        content = payload.get("content", "")
        match = re.match(r"^\s*---\s*\n(.*?)\n---\s*\n", content, flags=re.DOTALL)
        if match:
            try:
                data = yaml.safe_load(match.group(1))
            except yaml.YAMLError as err:
                return JSONResponse({"errors": [{"message": f"Invalid YAML: {err}"}], "warnings": []}, 400)
            if data is not None and not isinstance(data, dict):
                return JSONResponse({"errors": [{"message": "Metadata must be a mapping"}], "warnings": []}, 400)
            return {"errors": [], "warnings": []}
        return {"errors": [], "warnings": [{"message": "Empty or missing yaml metadata in repo card"}]}

    def info(request: Request, ns: str, name: str, revision: str) -> dict:
        repo = repo_for_read(request, f"{ns}/{name}")
        commit = commit_for(repo, revision)
        card = _card_data(commit.files) or {}
        return {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id,
            "modelId": repo.repo_id, "author": ns, "sha": commit.oid, "lastModified": commit.date,
            "createdAt": repo.created, "private": repo.private, "gated": False, "disabled": False,
            "downloads": 0, "likes": 0, "library_name": card.get("library_name"),
            "tags": list(card.get("tags") or []), "pipeline_tag": card.get("pipeline_tag"),
            "cardData": card or None, "model-index": card.get("model-index"),
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
        }

    @app.get("/api/models/{ns}/{name}")
    def model_info(request: Request, ns: str, name: str):
        return info(request, ns, name, "main")

    @app.get("/api/models/{ns}/{name}/revision/{revision}")
    def model_info_at(request: Request, ns: str, name: str, revision: str):
        return info(request, ns, name, revision)

    @app.get("/api/models/{ns}/{name}/refs")
    def refs(request: Request, ns: str, name: str, include_prs: bool = False):
        repo = repo_for_read(request, f"{ns}/{name}")

        def listing(kind: str, refs: dict[str, str]) -> list[dict]:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": oid} for n, oid in sorted(refs.items())]

        out = {"branches": listing("heads", repo.branches), "tags": listing("tags", repo.tags), "converts": []}
        if include_prs:
            out["pullRequests"] = []
        return out

    @app.get("/api/models/{ns}/{name}/commits/{revision}")
    def commits(request: Request, ns: str, name: str, revision: str):
        repo = repo_for_read(request, f"{ns}/{name}")
        commit: _Commit | None = commit_for(repo, revision)
        out = []
        while commit is not None:
            out.append({"id": commit.oid, "title": commit.title, "message": commit.message,
                        "authors": [{"user": commit.author}], "date": commit.date})
            commit = repo.commits.get(commit.parent) if commit.parent else None
        return out

    @app.get("/api/models/{ns}/{name}/tree/{revision}")
    @app.get("/api/models/{ns}/{name}/tree/{revision}/{path:path}")
    def tree(request: Request, ns: str, name: str, revision: str, path: str = "", recursive: bool = False):
        repo = repo_for_read(request, f"{ns}/{name}")
        commit = commit_for(repo, revision)
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        files = {p: b for p, b in commit.files.items() if p.startswith(prefix)}
        if prefix and not files:
            raise _HubError(404, f"{path} does not exist on {revision}", "EntryNotFound",
                            {"X-Repo-Commit": commit.oid})
        entries: dict[str, dict] = {}
        for p, data in sorted(files.items()):
            rest = p[len(prefix):].split("/")
            for depth in range(1, len(rest)):  # the folders on the way
                folder = prefix + "/".join(rest[:depth])
                if recursive or depth == 1:
                    entries.setdefault(folder, {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(),
                                                "size": 0, "path": folder})
            if recursive or len(rest) == 1:
                entries[p] = {"type": "file", "oid": git_blob_oid(data), "size": len(data), "path": p}
        return list(entries.values())

    # -- commits and tags ------------------------------------------------------------------------
    @app.post("/api/models/{ns}/{name}/preupload/{revision}")
    async def preupload(request: Request, ns: str, name: str, revision: str):
        repo, _ = repo_for_write(request, f"{ns}/{name}")
        if request.query_params.get("create_pr"):
            raise _HubError(400, "Pull requests are not supported by this test server")
        commit = commit_for(repo, revision)
        payload = await request.json()
        out = []
        for item in payload.get("files", []):
            existing = commit.files.get(item["path"])
            out.append({"path": item["path"], "uploadMode": "regular", "shouldIgnore": False,
                        "oid": git_blob_oid(existing) if existing is not None else None})
        return {"files": out, "commitOid": commit.oid}

    @app.post("/api/models/{ns}/{name}/commit/{revision}")
    async def commit(request: Request, ns: str, name: str, revision: str):
        repo, user = repo_for_write(request, f"{ns}/{name}")
        if request.query_params.get("create_pr"):
            raise _HubError(400, "Pull requests are not supported by this test server")
        if revision not in repo.branches:
            raise _HubError(404, f"Invalid rev id: {revision} (commits go to a branch)", "RevisionNotFound")
        lines = [json.loads(line) for line in (await request.body()).decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HubError(400, "The first ndjson line must be the commit header")
        header = lines[0]["value"]
        with state.lock:
            parent = repo.commits[repo.branches[revision]]
            wanted_parent = header.get("parentCommit")
            if wanted_parent and not parent.oid.startswith(wanted_parent):
                raise _HubError(412, f"A commit has happened since {wanted_parent}: the head is {parent.oid}")
            files = dict(parent.files)
            for op in lines[1:]:
                key, value = op.get("key"), op.get("value", {})
                path = value.get("path", "")
                if key == "file":
                    if value.get("encoding") != "base64":
                        raise _HubError(400, f"Unsupported encoding for {path}")
                    files[path] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise _HubError(404, f"{path} does not exist", "EntryNotFound")
                elif key == "deletedFolder":
                    folder = path.rstrip("/") + "/"
                    doomed = [p for p in files if p.startswith(folder)]
                    if not doomed:
                        raise _HubError(404, f"{path} does not exist", "EntryNotFound")
                    for p in doomed:
                        del files[p]
                elif key == "lfsFile":
                    raise _HubError(400, "LFS files are not supported by this test server (use regular files)")
                else:
                    raise _HubError(400, f"Unsupported commit operation {key!r}")
            new = state.new_commit(repo, parent, files, header.get("summary", ""), header.get("description", ""),
                                   user)
            repo.branches[revision] = new.oid
        return {"success": True, "commitOid": new.oid, "commitUrl": f"{base(request)}/{repo.repo_id}/commit/{new.oid}",
                "hookOutput": "", "pullRequestUrl": None}

    @app.post("/api/models/{ns}/{name}/tag/{revision}")
    async def create_tag(request: Request, ns: str, name: str, revision: str):
        repo, _ = repo_for_write(request, f"{ns}/{name}")
        payload = await request.json()
        tag = payload.get("tag", "")
        with state.lock:
            target = commit_for(repo, revision)
            if tag in repo.tags:
                raise _HubError(409, f"Tag {tag} already exists")
            if not tag or "/" in tag:
                raise _HubError(400, f"Invalid tag name {tag!r}")
            repo.tags[tag] = target.oid
        return {"tag": tag, "target": target.oid}

    @app.delete("/api/models/{ns}/{name}/tag/{tag}")
    def delete_tag(request: Request, ns: str, name: str, tag: str):
        repo, _ = repo_for_write(request, f"{ns}/{name}")
        with state.lock:
            if repo.tags.pop(tag, None) is None:
                raise _HubError(404, f"Invalid rev id: {tag}", "RevisionNotFound")
        return {}

    # -- downloads -------------------------------------------------------------------------------
    @app.api_route("/{ns}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
    def resolve(request: Request, ns: str, name: str, revision: str, path: str):
        repo = repo_for_read(request, f"{ns}/{name}")
        commit = commit_for(repo, revision)
        data = commit.files.get(path)
        if data is None:
            raise _HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{git_blob_oid(data)}"',
                   "Content-Length": str(len(data)), "Accept-Ranges": "none"}
        body = b"" if request.method == "HEAD" else data
        return Response(body, headers=headers, media_type="application/octet-stream")

    return app


@contextlib.contextmanager
def serve(app: FastAPI, *, host: str = "127.0.0.1", timeout: float = 10.0) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free port of ``host``; yield its base URL.

    The server is always stopped when the ``with`` block ends.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"hub-{port}")
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the test Hub did not start on {host}:{port}")
            time.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
