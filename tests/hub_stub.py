"""A local stand-in for the Hugging Face hub (127.0.0.1 only), for testing the real download code.

It answers what ``huggingface_hub.snapshot_download`` of the installed version calls for a dataset
repo (checked against huggingface_hub 2.4 by logging its requests):

* ``GET  /api/datasets/{repo}/revision/{rev}``           -> repo info with ``sha`` and ``siblings``
* ``GET  /api/datasets/{repo}/tree/{rev}[/{path}]``      -> file listing (``recursive`` accepted)
* ``HEAD /datasets/{repo}/resolve/{rev}/{path}``         -> ``X-Repo-Commit``, ``ETag``, ``Content-Length``
* ``GET  /datasets/{repo}/resolve/{rev}/{path}``         -> the bytes (``Range`` honoured, for resume)

Unknown repos answer 404 with ``X-Error-Code: RepoNotFound``; with ``require_token`` set, requests
without ``Authorization: Bearer <token>`` answer 401. Every request is recorded in ``requests``.
"""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class HubStub:
    def __init__(self, repo_id: str, files: dict[str, bytes], commit: str = "a" * 40,
                 require_token: str | None = None) -> None:
        self.repo_id = repo_id
        self.files = dict(files)
        self.commit = commit
        self.require_token = require_token
        self.requests: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubStub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)) if not (headers or {}).get("Content-Length") else headers["Content-Length"])
                self.end_headers()
                if not head and body:
                    self.wfile.write(body)

            def _json(self, obj, code: int = 200, head: bool = False):
                self._send(code, json.dumps(obj).encode(), {"Content-Type": "application/json",
                                                            "X-Repo-Commit": stub.commit}, head)

            def _error(self, code: int, error_code: str, msg: str, head: bool = False):
                self._send(code, json.dumps({"error": msg}).encode(),
                           {"Content-Type": "application/json", "X-Error-Code": error_code,
                            "X-Error-Message": msg}, head)

            def _route(self, head: bool):
                path = unquote(urlparse(self.path).path)
                stub.requests.append((self.command, self.path))
                if stub.require_token:
                    auth = self.headers.get("Authorization", "")
                    if auth != f"Bearer {stub.require_token}":
                        return self._error(401, "RepoNotFound", "Invalid credentials", head)
                api = f"/api/datasets/{stub.repo_id}/"
                res = f"/datasets/{stub.repo_id}/resolve/"
                if path.startswith(api + "revision/"):
                    return self._json({"id": stub.repo_id, "_id": "stub", "sha": stub.commit, "private": False,
                                       "siblings": [{"rfilename": f} for f in sorted(stub.files)],
                                       "lastModified": "2024-01-01T00:00:00.000Z", "tags": [], "downloads": 0,
                                       "likes": 0, "gated": False, "disabled": False,
                                       "author": stub.repo_id.split("/")[0]}, head=head)
                if path.startswith(api + "tree/"):
                    rest = path[len(api + "tree/"):]
                    prefix = rest.split("/", 1)[1] if "/" in rest else ""
                    entries, dirs = [], set()
                    for name in sorted(stub.files):
                        if prefix and not name.startswith(prefix.rstrip("/") + "/"):
                            continue
                        parts = name.split("/")
                        for i in range(1, len(parts)):
                            dirs.add("/".join(parts[:i]))
                        data = stub.files[name]
                        entries.append({"type": "file", "path": name, "size": len(data),
                                        "oid": hashlib.sha1(data).hexdigest()})
                    entries = [{"type": "directory", "path": d, "oid": "0" * 40, "size": 0}
                               for d in sorted(dirs)] + entries
                    return self._json(entries, head=head)
                if path.startswith(res):
                    rest = path[len(res):]
                    _rev, _, fname = rest.partition("/")
                    data = stub.files.get(fname)
                    if data is None:
                        return self._error(404, "EntryNotFound", f"{fname} not found", head)
                    etag = '"' + hashlib.sha1(data).hexdigest() + '"'
                    headers = {"X-Repo-Commit": stub.commit, "ETag": etag,
                               "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
                    rng = self.headers.get("Range")
                    if rng and rng.startswith("bytes=") and not head:
                        start = int(rng[6:].split("-")[0] or 0)
                        body = data[start:]
                        headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                        return self._send(206, body, headers)
                    headers["Content-Length"] = str(len(data))
                    return self._send(200, data, headers, head)
                if path.startswith("/api/") or path.startswith("/datasets/"):
                    return self._error(404, "RepoNotFound", "Repository not found", head)
                return self._error(404, "NotFound", "not found", head)

            def do_GET(self):
                self._route(head=False)

            def do_HEAD(self):
                self._route(head=True)

        return Handler
