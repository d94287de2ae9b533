"""A demo HTTP backend for docker-compose.yml: says who it is, and can be made to fail.

GET /          -> "hello from NAME"
GET /healthz   -> 200 "ok", or 503 "failing" after POST /fail (POST /recover undoes it)
Listens on 0.0.0.0:8080; NAME comes from the BACKEND_NAME environment variable.
"""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = os.environ.get("BACKEND_NAME", "backend")
state = {"failing": False}


class Handler(BaseHTTPRequestHandler):
    def _reply(self, status: int, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            failing = state["failing"]
            self._reply(503 if failing else 200, "failing" if failing else "ok")
        else:
            self._reply(200, f"hello from {NAME}")

    def do_POST(self) -> None:
        if self.path in ("/fail", "/recover"):
            state["failing"] = self.path == "/fail"
            self._reply(200, f"{NAME}: {'failing' if state['failing'] else 'healthy'}")
        else:
            self._reply(404, "POST /fail or /recover")

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
