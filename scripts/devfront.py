#!/usr/bin/env python3
"""`make dev`'s front door: what API Gateway does in front of the functions and `cargo lambda
watch` does not. Stdlib only.

    python scripts/devfront.py --listen-port P --target http://127.0.0.1:W [--quiet]

Every request is forwarded to the `cargo lambda watch` at --target unchanged and its answer
sent back unchanged, with two differences:

- **A body that is not UTF-8.** The emulator puts the body into the function's event as text;
  bytes that are not UTF-8 (say `0a ff 0b` sent as `application/json`) make it answer a 500
  of its own, `text/plain`, without invoking the function. API Gateway base64-encodes such a
  body (`isBase64Encoded: true`) and the function answers it, a 400 in the API's own format.
  So such a request is not forwarded: the front finds the function the way the emulator does
  (the `[workspace.metadata.lambda.watch.router]` table of Cargo.toml), builds the HTTP API
  (payload 2.0) event API Gateway would send, base64 body included, invokes the function
  through the emulator's Lambda invoke API, and answers what the function answered.
- **One log line per request** on stdout, `METHOD /path -> status (ms)` (never a header or
  a body), unless --quiet: the emulator's own output goes to a log file (scripts/dev.sh).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import sys
import time
import tomllib
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from httpfront import HOP_BY_HOP, forward, read_body  # beside this file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_SECONDS = 300


# --- the router table ---------------------------------------------------------------------

def load_routes(cargo_toml: str) -> list[tuple[list[str], dict[str, str]]]:
    """(pattern segments, {METHOD: function}) per path of cargo lambda watch's router; a
    route given as one function name takes every method."""
    with open(cargo_toml, "rb") as f:
        router = tomllib.load(f)["workspace"]["metadata"]["lambda"]["watch"]["router"]
    routes = []
    for path, target in router.items():
        methods = ({"*": target} if isinstance(target, str)
                   else {r["method"].upper(): r["function"] for r in target})
        routes.append((path.strip("/").split("/"), methods))
    return routes


def match(routes, method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The function serving METHOD path and its path parameters, or None. As in the
    emulator's router, a static segment wins over a `{param}`, which wins over a
    `{*catch-all}`, segment by segment."""
    segments = path.strip("/").split("/")
    best = None
    for pattern, methods in routes:
        function = methods.get(method) or methods.get("*")
        found = function and match_pattern(pattern, segments)
        if found and (best is None or found[0] < best[0]):
            best = (found[0], function, found[1])
    return (best[1], best[2]) if best else None


def match_pattern(pattern: list[str], segments: list[str]):
    """(rank, path parameters) when the path's segments fit the pattern's, else None."""
    params: dict[str, str] = {}
    rank: list[int] = []
    for i, part in enumerate(pattern):
        if part.startswith("{*"):
            rest = segments[i:]
            if not rest or rest == [""]:
                return None
            params[part[2:-1]] = "/".join(rest)
            return rank + [2], params
        if i >= len(segments):
            return None
        if part.startswith("{"):
            params[part[1:-1]] = urllib.parse.unquote(segments[i])
            rank.append(1)
        elif part == segments[i]:
            rank.append(0)
        else:
            return None
    return (rank, params) if len(pattern) == len(segments) else None


# --- API Gateway's event and answer -------------------------------------------------------

def is_text(body: bytes) -> bool:
    try:
        body.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def http_api_event(method: str, target: str, headers, body: bytes, params: dict[str, str],
                   source_ip: str) -> dict:
    """The HTTP API (payload format 2.0) event for this request, its body base64-encoded."""
    split = urllib.parse.urlsplit(target)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers.items():
        name = name.lower()
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        elif name not in HOP_BY_HOP:
            merged[name] = f"{merged[name]},{value}" if name in merged else value
    query: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(split.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    now = time.time()
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": split.path,
        "rawQueryString": split.query,
        "headers": merged,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "devfront",
            "domainName": merged.get("host", "localhost"),
            "domainPrefix": merged.get("host", "localhost").split(".")[0],
            "http": {"method": method, "path": split.path, "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": merged.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": True,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if params:
        event["pathParameters"] = params
    return event


def http_api_answer(result: dict) -> tuple[int, list[tuple[str, str]], bytes]:
    """A function's HTTP API answer (statusCode, headers, cookies, body) as HTTP."""
    headers = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(v)) for v in values)
    headers.extend(("Set-Cookie", c) for c in result.get("cookies") or [])
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    return int(result.get("statusCode") or 200), headers, data


# --- the server ---------------------------------------------------------------------------

class Front(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    target: urllib.parse.SplitResult
    routes: list
    quiet = False

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the stdlib's name)
        pass  # one line per request, written by handle_any

    def upstream(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.target.hostname, self.target.port,
                                          timeout=TIMEOUT_SECONDS)

    def forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        status, _, headers, data = forward(self, self.target, body, TIMEOUT_SECONDS)
        return status, headers, data

    def invoke(self, function: str, event: dict) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = self.upstream()
        try:
            payload = json.dumps(event).encode()
            conn.request("POST", f"/2015-03-31/functions/{function}/invocations", body=payload,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200 or resp.getheader("X-Amz-Function-Error"):
                return 502, [("Content-Type", "text/plain")], (
                    f"devfront: {function} failed: {resp.status} {data[:500]!r}\n".encode())
            return http_api_answer(json.loads(data))
        finally:
            conn.close()

    def handle_any(self) -> None:
        started = time.monotonic()
        body = read_body(self)
        try:
            found = None if is_text(body) else match(
                self.routes, self.command, urllib.parse.urlsplit(self.path).path)
            if found:
                function, params = found
                event = http_api_event(self.command, self.path, self.headers, body, params,
                                       self.client_address[0])
                status, headers, data = self.invoke(function, event)
            else:
                status, headers, data = self.forward(body)
        except OSError as err:
            status, headers = 502, [("Content-Type", "text/plain")]
            data = f"devfront: cargo lambda watch did not answer: {err}\n".encode()
        self.send_response_only(status)
        for name, value in headers:
            keep = name.lower() != "content-length" or self.command == "HEAD"
            if name.lower() not in HOP_BY_HOP and keep:
                self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        if not self.quiet:
            path = urllib.parse.urlsplit(self.path).path
            ms = (time.monotonic() - started) * 1000
            print(f"{self.command} {path} -> {status} ({ms:.0f} ms)", flush=True)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any


def serve(listen_port: int, target: str, quiet: bool = False) -> None:
    Front.target = urllib.parse.urlsplit(target)
    Front.routes = load_routes(os.path.join(ROOT, "Cargo.toml"))
    Front.quiet = quiet
    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", listen_port), Front)
    server.daemon_threads = True
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--target", required=True, help="http://host:port of cargo lambda watch")
    parser.add_argument("--quiet", action="store_true", help="no request log lines")
    args = parser.parse_args()
    serve(args.listen_port, args.target, args.quiet)


if __name__ == "__main__":
    main()
