#!/usr/bin/env python3
"""The end-to-end suite's front door to `cargo lambda watch`. Stdlib only.

    python tests/e2e/emulatorfront.py --listen-port P --target http://127.0.0.1:W

Every request is forwarded to --target unchanged (method, path, headers, body) and its answer
is sent back unchanged. One exception, and it is the emulator's, not the API's:

`cargo lambda watch` (1.9.2) now and then loses the response a function has already sent it,
when that response is large (a list of 100+ users, ~100 KB) and the machine is busy: the
function logs its 200, the runtime API accepts the response, and the emulator answers the
client with a 500 of its own, `{"type":"https://httpstatuses.com/500","status":500,
"title":"Internal Server Error"}`, from its HTTP problem-details library. Our functions never
answer in that format (the admin API speaks DRF JSON, SCIM speaks SCIM Errors), so that body
identifies the emulator. API Gateway and Lambda do not have this failure.

When a *read* (GET, HEAD, or POST to a `/.search` path, which writes nothing) gets exactly
that answer, the front sends the same request again, up to 3 times, and logs each retry on
stderr (`emulator-500 retried ...`); e2e.sh prints the count at the end. A write is never
sent twice: its answer, whatever it is, goes back to the client, so a test sees it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from httpfront import HOP_BY_HOP, forward, read_body  # noqa: E402 (scripts/httpfront.py)

EMULATOR_500 = {"type": "https://httpstatuses.com/500", "status": 500,
                "title": "Internal Server Error"}
RETRIES = 3
TIMEOUT_SECONDS = 300



def is_emulator_500(status: int, body: bytes) -> bool:
    if status != 500:
        return False
    try:
        return json.loads(body) == EMULATOR_500
    except ValueError:
        return False


def is_read(method: str, path: str) -> bool:
    return method in ("GET", "HEAD") or (
        method == "POST" and urllib.parse.urlsplit(path).path.endswith("/.search"))


class Front(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    target: urllib.parse.SplitResult

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the stdlib's name)
        pass  # one line per request would drown the retries

    def forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        return forward(self, self.target, body, TIMEOUT_SECONDS)

    def handle_any(self) -> None:
        body = read_body(self)
        try:
            status, reason, headers, data = self.forward(body)
            attempt = 0
            while (attempt < RETRIES and is_read(self.command, self.path)
                   and is_emulator_500(status, data)):
                attempt += 1
                print(f"emulator-500 retried {self.command} {self.path} (attempt {attempt})",
                      file=sys.stderr, flush=True)
                status, reason, headers, data = self.forward(body)
        except OSError as err:
            status, reason, headers = 502, "Bad Gateway", [("Content-Type", "text/plain")]
            data = f"emulatorfront: cargo lambda watch did not answer: {err}\n".encode()
        self.send_response_only(status, reason)
        for name, value in headers:
            keep = name.lower() != "content-length" or self.command == "HEAD"
            if name.lower() not in HOP_BY_HOP and keep:
                self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--target", required=True, help="http://host:port of cargo lambda watch")
    args = parser.parse_args()
    Front.target = urllib.parse.urlsplit(args.target)
    # The race tests open 24+ connections at once: the stdlib's backlog of 5 would reset some.
    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", args.listen_port), Front)
    server.daemon_threads = True
    print(f"emulatorfront on 127.0.0.1:{args.listen_port} -> {args.target}",
          file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
