"""What the local HTTP fronts share: `scripts/devfront.py` (make dev's API Gateway stand-in) and,
for the tests, `tests/e2e/emulatorfront.py` and `tests/e2e/faultproxy.py`. Each is a stdlib
`BaseHTTPRequestHandler` that reads the whole request, then forwards it or answers it itself."""
from __future__ import annotations

import http.client
import urllib.parse
from http.server import BaseHTTPRequestHandler

# RFC 9110 §7.6.1: headers that belong to one connection, never forwarded.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "proxy-connection"}


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The whole body of the request `handler` is serving: Content-Length or chunked."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def forward(handler: BaseHTTPRequestHandler, target: urllib.parse.SplitResult, body: bytes,
            timeout: float) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """Sends the request `handler` is serving (its method, path, end-to-end headers and `body`)
    to `target`: (status, reason, headers, body) of the answer."""
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout)
    try:
        conn.putrequest(handler.command, handler.path, skip_host=True, skip_accept_encoding=True)
        for name, value in handler.headers.items():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                conn.putheader(name, value)
        if body or handler.command in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        resp = conn.getresponse()
        return resp.status, resp.reason, resp.getheaders(), resp.read()
    finally:
        conn.close()
