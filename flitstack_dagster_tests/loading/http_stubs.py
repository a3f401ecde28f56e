"""Small real HTTP servers on 127.0.0.1 that stand where Pipedrive should be: a web page, a redirect
to a login page, JSON that is not Pipedrive's, and a proxy in front of the sandbox that answers some
requests itself (an HTML 404, a delete it never forwards)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class Stub:
    """One server; `answer(handler) -> (status, content type, body, extra headers)` decides each reply."""

    def __init__(self, answer):
        self.answer = answer
        self.requests: list[tuple[str, str]] = []  # (method, path) of everything received
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("content-length") or 0)
                self.body = self.rfile.read(length) if length else b""
                stub.requests.append((self.command, self.path))
                status, ctype, body, headers = stub.answer(self)
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *a):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] in ("POST", "PUT", "PATCH", "DELETE")]

    def __enter__(self) -> Stub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


HTML = "<!doctype html><html><body><h1>Welcome</h1></body></html>".encode()


def html_page(status: int = 200) -> Stub:
    return Stub(lambda h: (status, "text/html; charset=utf-8", HTML, {}))


def login_redirect() -> Stub:
    return Stub(lambda h: (302, "text/html", b"", {"location": "/auth/login?next=%2Fv1%2Fusers%2Fme"}))


def foreign_json() -> Stub:
    return Stub(lambda h: (200, "application/json", b'{"user": {"id": 1}, "ok": true}', {}))


def proxy(target: str, *, html_404_for: tuple[str, ...] = (), swallow_deletes: bool = False,
          refuse_deletes: bool = False) -> Stub:
    """Forwards to `target`, except: paths starting with one of `html_404_for` get an HTML 404 (a route
    missing behind a gateway); with `swallow_deletes` a DELETE is answered success without forwarding;
    with `refuse_deletes` it gets Pipedrive's 401 (a token revoked while a rollback runs)."""

    def answer(h: BaseHTTPRequestHandler):
        if refuse_deletes and h.command == "DELETE":
            return 401, "application/json", b'{"success": false, "error": "unauthorized access", "errorCode": 401}', {}
        if h.path.startswith(html_404_for):
            return 404, "text/html", b"<html><body>404 page not found</body></html>", {}
        if swallow_deletes and h.command == "DELETE":
            rid = h.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
            return 200, "application/json", f'{{"success": true, "data": {{"id": {rid}}}}}'.encode(), {}
        headers = {k: v for k, v in h.headers.items() if k.lower() in ("x-api-token", "content-type", "accept")}
        r = httpx.request(h.command, target + h.path, headers=headers, content=h.body or None)
        keep = {k: v for k, v in r.headers.items() if k.lower().startswith("x-")}
        return r.status_code, r.headers.get("content-type", "application/json"), r.content, keep

    return Stub(answer)
