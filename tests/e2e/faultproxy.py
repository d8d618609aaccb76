#!/usr/bin/env python3
"""A fault-injecting HTTP proxy between the functions and DynamoDB (Local). Stdlib only.

    python tests/e2e/faultproxy.py --listen-port P --target http://127.0.0.1:D [--port-file F]

Every request but the control path is forwarded to --target (DynamoDB: POST /, JSON 1.0,
`X-Amz-Target: DynamoDB_20120810.<Operation>`). When told, the proxy fails a share of them
the way DynamoDB fails, before they reach DynamoDB (so a failed call never lands):

    throttling    400 com.amazon.coral.availability#ThrottlingException
    provisioned   400 ...#ProvisionedThroughputExceededException
    limit         400 ...#RequestLimitExceeded
    server_error  500 ...#InternalServerError
    tx_throttled  400 ...#TransactionCanceledException, every CancellationReason a
                  ThrottlingError (TransactWriteItems only: one reason per TransactItems entry)
    hang          no answer: the connection is held until the client goes away, the faults
                  are changed (POST /__faults__), or hang_seconds (default 60) pass; then
                  it is closed without a response

Control endpoint, same port, path /__faults__ (never a DynamoDB path):

    POST /__faults__ {"rate": 0.3, "kinds": ["throttling", ...], "seed": 7}
        rate: share of eligible requests failed (0 = pass-through, the default; heals and
        releases every held connection); kinds: which faults, drawn uniformly among those
        that apply to the request (default: all but hang); seed: reseeds the generator;
        optional: "ops": ["TransactWriteItems", ...] restricts faults to these operations,
        "hang_seconds": how long a hang holds at most, "reset": true zeroes the counters.
        Answers the state, as GET does.
    GET /__faults__
        {"rate", "kinds", "ops", "seed", "hang_seconds", "requests", "forwarded",
         "injected": {kind: n}, "hanging": n, "upstream_errors": n, "by_op": {op: {...}}}
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import select
import socket
import string
import sys
import threading
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from httpfront import HOP_BY_HOP, read_body  # noqa: E402 (scripts/httpfront.py)

CONTROL_PATH = "/__faults__"
CONTENT_TYPE = "application/x-amz-json-1.0"
DDB = "com.amazonaws.dynamodb.v20120810#"

# kind -> (HTTP status, __type, message); tx_throttled and hang are built separately.
ERRORS = {
    "throttling": (400, "com.amazon.coral.availability#ThrottlingException",
                   "Rate of requests exceeds the allowed throughput."),
    "provisioned": (400, DDB + "ProvisionedThroughputExceededException",
                    "The level of configured provisioned throughput for the table was exceeded. "
                    "Consider increasing your provisioning level with the UpdateTable API."),
    "limit": (400, DDB + "RequestLimitExceeded",
              "Throughput exceeds the current throughput limit for your account. "
              "Please contact AWS Support at https://aws.amazon.com/support request a limit increase"),
    "server_error": (500, DDB + "InternalServerError", "Internal server error"),
}
TX_REASON = {
    "Code": "ThrottlingError",
    "Message": "Throughput exceeds the current capacity for one or more global secondary indexes. "
               "DynamoDB is automatically scaling your index so please be patient",
}
KINDS = (*ERRORS, "tx_throttled", "hang")
DEFAULT_KINDS = [k for k in KINDS if k != "hang"]


def request_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(52))


class Faults:
    """What to inject, and what happened. Every field is guarded by `lock`."""

    def __init__(self, hang_seconds: float):
        self.lock = threading.Lock()
        self.rate = 0.0
        self.kinds = list(DEFAULT_KINDS)
        self.ops: list[str] | None = None
        self.seed: int | None = None
        self.rng = random.Random()
        self.hang_seconds = hang_seconds
        # Set (and replaced) whenever the configuration changes: held connections let go.
        self.release = threading.Event()
        self.reset_counters()

    def reset_counters(self):
        self.requests = 0
        self.forwarded = 0
        self.upstream_errors = 0
        self.hanging = 0
        self.injected = {kind: 0 for kind in KINDS}
        self.by_op: dict[str, dict[str, int]] = {}

    def configure(self, cfg: dict) -> None:
        if not isinstance(cfg, dict):
            raise ValueError("expected a JSON object")
        unknown = set(cfg) - {"rate", "kinds", "seed", "ops", "hang_seconds", "reset"}
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}")
        rate = cfg.get("rate", None)
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float))
                                 or not 0 <= rate <= 1):
            raise ValueError("rate must be a number in [0, 1]")
        kinds = cfg.get("kinds")
        if kinds is not None:
            if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
                raise ValueError(f"kinds must be a non-empty list of {list(KINDS)}")
        ops = cfg.get("ops")
        if ops is not None and (not isinstance(ops, list) or not all(isinstance(o, str) for o in ops)):
            raise ValueError("ops must be a list of operation names")
        hang = cfg.get("hang_seconds")
        if hang is not None and (not isinstance(hang, (int, float)) or not 0 < hang <= 600):
            raise ValueError("hang_seconds must be in (0, 600]")
        seed = cfg.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer")
        with self.lock:
            if rate is not None:
                self.rate = float(rate)
            if "kinds" in cfg:
                self.kinds = list(kinds)
            elif rate is not None and rate > 0:
                self.kinds = list(DEFAULT_KINDS)
            if "ops" in cfg:
                self.ops = ops
            if hang is not None:
                self.hang_seconds = float(hang)
            if seed is not None:
                self.seed = seed
                self.rng = random.Random(seed)
            if cfg.get("reset"):
                self.reset_counters()
            self.release.set()
            self.release = threading.Event()

    def state(self) -> dict:
        with self.lock:
            return {
                "rate": self.rate, "kinds": self.kinds, "ops": self.ops, "seed": self.seed,
                "hang_seconds": self.hang_seconds, "requests": self.requests,
                "forwarded": self.forwarded, "injected": dict(self.injected),
                "injected_total": sum(self.injected.values()), "hanging": self.hanging,
                "upstream_errors": self.upstream_errors,
                "by_op": {op: dict(c) for op, c in sorted(self.by_op.items())},
            }

    def decide(self, op: str) -> str | None:
        """The fault to inject into this request, or None to forward it; counts it."""
        with self.lock:
            self.requests += 1
            counts = self.by_op.setdefault(op, {"requests": 0, "forwarded": 0, "injected": 0})
            counts["requests"] += 1
            kind = None
            if self.rate > 0 and (self.ops is None or op in self.ops):
                eligible = [k for k in self.kinds if k != "tx_throttled" or op == "TransactWriteItems"]
                if eligible and self.rng.random() < self.rate:
                    kind = self.rng.choice(eligible)
            if kind is None:
                self.forwarded += 1
                counts["forwarded"] += 1
            else:
                self.injected[kind] += 1
                counts["injected"] += 1
            return kind


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"
    sys_version = ""
    faults: Faults
    target: urllib.parse.SplitResult
    verbose = False

    # -- plumbing ----------------------------------------------------------------------

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if self.verbose:
            sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), format % args))

    def answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.log_request(status)
        self.send_response_only(status)
        names = {name.lower() for name, _ in headers}
        if "date" not in names:
            self.send_header("Date", self.date_time_string())
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def answer_json(self, status: int, obj: object) -> None:
        self.answer(status, json.dumps(obj, indent=1).encode() + b"\n",
                    [("Content-Type", "application/json")])

    def do_GET(self):
        self.handle_any()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def handle_any(self):
        body = read_body(self)
        if urllib.parse.urlsplit(self.path).path.rstrip("/") == CONTROL_PATH:
            self.control(body)
            return
        target = self.headers.get("X-Amz-Target", "")
        op = target.rsplit(".", 1)[-1] if target else f"{self.command} {self.path}"
        kind = self.faults.decide(op)
        if kind is None:
            self.forward(body)
        elif kind == "hang":
            self.hang()
        else:
            self.inject(kind, body)

    # -- control -----------------------------------------------------------------------

    def control(self, body: bytes):
        if self.command == "GET":
            self.answer_json(200, self.faults.state())
        elif self.command == "POST":
            try:
                self.faults.configure(json.loads(body or b"{}"))
            except (ValueError, TypeError) as err:
                self.answer_json(400, {"error": str(err)})
                return
            state = self.faults.state()
            sys.stderr.write(f"{time.strftime('%H:%M:%S')} faults: rate={state['rate']} "
                             f"kinds={state['kinds']} ops={state['ops']} seed={state['seed']}\n")
            self.answer_json(200, state)
        else:
            self.answer_json(405, {"error": "GET or POST"})

    # -- faults ------------------------------------------------------------------------

    def inject(self, kind: str, body: bytes):
        if kind == "tx_throttled":
            try:
                items = len(json.loads(body or b"{}").get("TransactItems") or []) or 1
            except (ValueError, AttributeError):
                items = 1
            status = 400
            payload = {
                "__type": DDB + "TransactionCanceledException",
                "message": "Transaction cancelled, please refer cancellation reasons for specific "
                           f"reasons [{', '.join(['ThrottlingError'] * items)}]",
                "CancellationReasons": [dict(TX_REASON) for _ in range(items)],
            }
        else:
            status, type_, message = ERRORS[kind]
            payload = {"__type": type_, "message": message}
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.answer(status, data, [
            ("Content-Type", CONTENT_TYPE),
            ("x-amzn-RequestId", request_id()),
            ("x-amz-crc32", str(zlib.crc32(data) & 0xFFFFFFFF)),
        ])

    def hang(self):
        """Hold the connection without answering, then close it."""
        faults = self.faults
        with faults.lock:
            faults.hanging += 1
            release, limit = faults.release, faults.hang_seconds
        deadline = time.monotonic() + limit
        try:
            while time.monotonic() < deadline and not release.is_set():
                readable, _, _ = select.select([self.connection], [], [], 0.2)
                if readable:
                    try:
                        if not self.connection.recv(1, socket.MSG_PEEK):
                            break  # the client went away
                    except OSError:
                        break
                    time.sleep(0.2)  # it sent more (pipelining): keep holding, do not spin
        finally:
            with faults.lock:
                faults.hanging -= 1
            self.close_connection = True

    # -- forwarding --------------------------------------------------------------------

    def upstream(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(self, "_upstream", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self.target.hostname, self.target.port or 80, timeout=60)
            self._upstream = conn
        return conn

    def forward(self, body: bytes):
        path = self.path
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP
                   and k.lower() != "content-length"]
        resp, error = None, None
        for attempt in range(2):  # a kept-alive upstream connection may have been closed
            conn = self.upstream(fresh=attempt > 0)
            try:
                conn.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    conn.putheader(name, value)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                self._upstream = None
                resp = None
                error = err
        if resp is None:
            with self.faults.lock:
                self.faults.upstream_errors += 1
            self.answer_json(502, {"error": f"upstream {self.target.geturl()}: {error}"})
            return
        out = [(k, v) for k, v in resp.getheaders()
               if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
        self.answer(resp.status, data, out)
        if resp.will_close:
            self._upstream = None

    def finish(self):
        try:
            super().finish()
        finally:
            conn = getattr(self, "_upstream", None)
            if conn is not None:
                conn.close()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--target", required=True, help="DynamoDB endpoint, e.g. http://127.0.0.1:8000")
    parser.add_argument("--port-file", help="write the port listened on to this file")
    parser.add_argument("--hang-seconds", type=float, default=60.0)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    target = urllib.parse.urlsplit(args.target)
    if target.scheme != "http" or not target.hostname:
        parser.error("--target must be http://host:port")
    Handler.faults = Faults(args.hang_seconds)
    Handler.target = target
    Handler.verbose = args.verbose
    server = Server((args.listen_host, args.listen_port), Handler)
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    sys.stderr.write(f"faultproxy: 127.0.0.1:{port} -> {args.target} (control: {CONTROL_PATH})\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
