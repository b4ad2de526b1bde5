"""A small fake Hugging Face Hub on 127.0.0.1 for the tests: the routes huggingface_hub uses to download
(resolve, model info) and to upload (create repo, validate-yaml, preupload, commit, branch), with the Hub's
error headers (RepoNotFound, RevisionNotFound, EntryNotFound). Repositories live in memory."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit


@dataclass
class Repo:
    private: bool = False
    branches: dict[str, str] = field(default_factory=dict)      # branch → commit
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit → {path: bytes}

    def commit(self, files: dict[str, bytes], branch: str = "main", message: str = "") -> str:
        parent = self.branches.get(branch, "")
        tree = {**self.commits.get(parent, {}), **files}
        digest = hashlib.sha1((parent + message + "".join(f"{p}{hashlib.sha256(b).hexdigest()}" for p, b in
                                                           sorted(tree.items()))).encode()).hexdigest()
        self.commits[digest] = tree
        self.branches[branch] = digest
        return digest

    def resolve(self, revision: str) -> str | None:
        return self.branches.get(revision) or (revision if revision in self.commits else None)


class FakeHub(http.server.ThreadingHTTPServer):
    """``repos``: repo id → Repo. ``truncate``: paths whose downloads stop halfway. ``requests``: (method, path,
    whether an Authorization header came). ``token``: what private repositories and uploads require."""

    daemon_threads = True

    def __init__(self, token: str = "hf_test_token"):
        self.repos: dict[str, Repo] = {}
        self.truncate: set[str] = set()
        self.failing: dict[str, int] = {}  # repository → the status every download request of it is answered
        self.requests: list[tuple[str, str, bool]] = []
        self.token = token
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def add(self, repo_id: str, files: dict[str, bytes], branch: str = "main", private: bool = False) -> str:
        """Commit ``files`` to ``repo_id`` (created if new) on ``branch``; returns the commit hash."""
        repo = self.repos.setdefault(repo_id, Repo(private=private))
        return repo.commit(files, branch)

    def start(self) -> "FakeHub":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # ------------------------------------------------------------------ plumbing
    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.server.token}"

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              head: bool = False, declared: int | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(declared if declared is not None else len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
            self.wfile.flush()
        if declared is not None and declared != len(body):
            self.close_connection = True  # promised more than was sent: a cut transfer

    def _json(self, status: int, value, head: bool = False) -> None:
        self._send(status, json.dumps(value).encode(), {"Content-Type": "application/json"}, head)

    def _error(self, status: int, code: str, head: bool = False) -> None:
        self._send(status, json.dumps({"error": code}).encode(),
                   {"X-Error-Code": code, "X-Error-Message": code, "Content-Type": "application/json"}, head)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _repo(self, repo_id: str, head: bool = False) -> Repo | None:
        repo = self.server.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized()):
            self._error(401, "RepoNotFound", head)
            return None
        return repo

    def _record(self) -> str:
        path = urlsplit(self.path).path
        self.server.requests.append((self.command, path, "Authorization" in self.headers))
        return path

    # ------------------------------------------------------------------ downloads
    def do_HEAD(self):
        self._get(head=True)

    def do_GET(self):
        self._get(head=False)

    def _get(self, head: bool):
        path = self._record()
        found = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if found:
            return self._resolve(unquote(found[1]), unquote(found[2]), unquote(found[3]), head)
        found = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        if found:
            return self._model_info(unquote(found[1]), unquote(found[2] or "main"), head)
        self._send(404, b"not found", head=head)

    def _at(self, repo_id: str, revision: str, head: bool) -> tuple[Repo | None, str | None]:
        """The repository and the commit ``revision`` names, or (…, None) once the error is answered."""
        repo = self._repo(repo_id, head)
        if repo is None:
            return None, None
        commit = repo.resolve(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", head)
        return repo, commit

    def _resolve(self, repo_id: str, revision: str, filename: str, head: bool) -> None:
        if repo_id in self.server.failing:
            return self._send(self.server.failing[repo_id], b"server error", head=head)
        repo, commit = self._at(repo_id, revision, head)
        if commit is None:
            return
        data = repo.commits[commit].get(filename)
        if data is None:
            return self._error(404, "EntryNotFound", head)
        headers = {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                   "Content-Type": "application/octet-stream"}
        cut = f"{repo_id}/{filename}" in self.server.truncate
        self._send(200, data[: len(data) // 2] if cut else data, headers, head, len(data) if cut else None)

    def _model_info(self, repo_id: str, revision: str, head: bool) -> None:
        repo, commit = self._at(repo_id, revision, head)
        if commit is None:
            return
        self._json(200, {"id": repo_id, "modelId": repo_id, "sha": commit, "private": repo.private,
                         "siblings": [{"rfilename": name} for name in sorted(repo.commits[commit])]}, head)

    # ------------------------------------------------------------------ uploads
    def do_POST(self):
        path = self._record()
        body = self._body()
        if not self._authorized():
            return self._send(401, b'{"error": "Invalid credentials in Authorization header"}',
                              {"X-Error-Message": "Invalid credentials in Authorization header"})
        if path == "/api/repos/create":
            payload = json.loads(body)
            repo_id = f"{payload['organization']}/{payload['name']}"
            if repo_id in self.server.repos:
                return self._json(409, {"error": "You already created this model repo",
                                        "url": f"{self.server.endpoint}/{repo_id}"})
            self.server.repos[repo_id] = Repo(private=payload.get("visibility") == "private")
            return self._json(200, {"url": f"{self.server.endpoint}/{repo_id}"})
        if path == "/api/validate-yaml":
            return self._json(200, {"errors": [], "warnings": []})
        found = re.fullmatch(r"/api/models/([^/]+/[^/]+)/(preupload|commit|branch)/(.+)", path)
        if not found:
            return self._send(404, b"not found")
        repo_id, action, revision = unquote(found[1]), found[2], unquote(found[3])
        repo = self._repo(repo_id)
        if repo is None:
            return
        if action == "preupload":
            files = json.loads(body)["files"]
            return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                              for f in files]})
        if action == "branch":
            if revision in repo.branches:
                return self._json(409, {"error": "Reference already exists"})
            repo.branches[revision] = repo.branches.get("main", "")
            if not repo.branches[revision]:
                repo.commits.setdefault("", {})
            return self._json(200, {})
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        files = {line["value"]["path"]: base64.b64decode(line["value"]["content"])
                 for line in lines if line["key"] == "file"}
        commit = repo.commit(files, revision, header.get("summary", ""))
        self._json(200, {"commitUrl": f"{self.server.endpoint}/{repo_id}/commit/{commit}", "commitOid": commit,
                         "pullRequestUrl": None})
