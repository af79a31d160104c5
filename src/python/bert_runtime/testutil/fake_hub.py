"""A local stand-in for the Hugging Face Hub's HTTP file layout, so the real download code runs in
tests.

Serves repositories from folders (`<root>/<org>/<name>/<files>`) at one fixed commit per repo, on
127.0.0.1. It answers the calls `huggingface_hub.snapshot_download` makes: the revision info and the
tree listing under `/api/models/...`, and `HEAD`/`GET` on `/<repo>/resolve/<revision>/<file>`. Point
`HF_ENDPOINT` at `url`. Named "fake" on purpose: the hub itself is unreachable from our machines.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


def commit_of(repo_dir: Path) -> str:
    """A stable 40-hex commit id derived from the repo's contents."""
    digest = hashlib.sha1()
    for path in sorted(p for p in repo_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(repo_dir).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class _Handler(BaseHTTPRequestHandler):
    server: _HubServer

    def log_message(self, format: str, *args: object) -> None:
        self.server.requests.append(f"{self.command} {self.path}")

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def _serve(self, send_body: bool) -> None:
        path = unquote(urlparse(self.path).path)
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 5 and parts[:2] == ["api", "models"] and parts[4] in ("revision", "tree"):
            self._api(parts[2] + "/" + parts[3], parts[4], "/".join(parts[5:]) or "main", send_body)
        elif len(parts) >= 5 and parts[2] == "resolve":
            self._file(parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]), send_body)
        else:
            self._error(404, "EntryNotFound", f"no route for {path}", send_body)

    def _repo(self, repo_id: str, revision: str, send_body: bool) -> tuple[Path, str] | None:
        repo_dir = self.server.root / repo_id
        if not repo_dir.is_dir():
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found", send_body)
            return None
        commit = commit_of(repo_dir)
        # "main" and the commit itself name the one revision each repo has.
        revision = revision.split("/")[0]
        if revision not in ("main", commit):
            self._error(404, "RevisionNotFound", f"Revision {revision} not found", send_body)
            return None
        return repo_dir, commit

    def _api(self, repo_id: str, kind: str, revision: str, send_body: bool) -> None:
        found = self._repo(repo_id, revision, send_body)
        if found is None:
            return
        repo_dir, commit = found
        files = sorted(p for p in repo_dir.rglob("*") if p.is_file())
        if kind == "revision":
            body: object = {
                "id": repo_id,
                "modelId": repo_id,
                "sha": commit,
                "private": False,
                "siblings": [{"rfilename": p.relative_to(repo_dir).as_posix()} for p in files],
            }
        else:
            body = [
                {
                    "type": "file",
                    "path": p.relative_to(repo_dir).as_posix(),
                    "size": p.stat().st_size,
                    "oid": hashlib.sha1(p.read_bytes()).hexdigest(),
                }
                for p in files
            ]
        self._send(200, json.dumps(body).encode(), "application/json", {}, send_body)

    def _file(self, repo_id: str, revision: str, filename: str, send_body: bool) -> None:
        if send_body and self.server.delay_s:
            time.sleep(self.server.delay_s)
        found = self._repo(repo_id, revision, send_body)
        if found is None:
            return
        repo_dir, commit = found
        path = repo_dir / filename
        if not path.is_file():
            self._error(404, "EntryNotFound", f"{filename} not found", send_body)
            return
        data = path.read_bytes()
        etag = hashlib.sha256(data).hexdigest()
        headers = {"X-Repo-Commit": commit, "ETag": f'"{etag}"', "X-Linked-Etag": f'"{etag}"'}
        self._send(200, data, "application/octet-stream", headers, send_body)

    def _error(self, status: int, code: str, message: str, send_body: bool) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(
            status,
            body,
            "application/json",
            {"X-Error-Code": code, "X-Error-Message": message},
            send_body,
        )

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str], send_body: bool
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)


class _HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, delay_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        # Seconds to wait before each file download: lets tests watch a slow model load.
        self.delay_s = delay_s
        self.requests: list[str] = []


@contextmanager
def serve_hub(root: Path, delay_s: float = 0.0) -> Iterator[_HubServer]:
    """Serve `root` as a hub on 127.0.0.1; the server's `url` goes into HF_ENDPOINT."""
    server = _HubServer(root, delay_s)
    thread = threading.Thread(target=server.serve_forever, name="fake-hub", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def url_of(server: _HubServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"
