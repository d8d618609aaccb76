#!/usr/bin/env python3
"""make bench (part): how long a change takes to reach a subscriber locally, write to SET.

Starts the `make dev` stack (scripts/dev.sh: DynamoDB Local, cargo lambda watch, and the
stream follower `usersctl events follow` that hands DynamoDB Local's stream to
events-publish as Lambda's event source mapping would) with a data directory and ports of
its own, subscribes a receiver with `usersctl events subscribe`, then makes CHANGES changes
through the admin API one at a time (PATCH first_name), each waiting for its SET. Prints the
latency from sending the write to the SET's arrival: min, p50, p95, max. Stops the stack.

usage: bench-events.py [CHANGES]   (default 20; BENCH_EVENT_CHANGES in bench)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USERSCTL = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"),
                        "debug", "usersctl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver(ThreadingHTTPServer):
    """Answers 202 to every SET and notes when each arrived."""

    def __init__(self):
        self.arrivals: list[float] = []
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with outer.arrived:
                    outer.arrivals.append(time.monotonic())
                    outer.arrived.notify_all()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/bench"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def wait_for(self, count: int, seconds: float) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.arrivals) >= count, seconds)


def main() -> None:
    changes = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    data = tempfile.mkdtemp(prefix="bench-events-")
    port, ddb_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNAMODB_")}
    env.update(PORT=str(port), DYNAMODB_PORT=str(ddb_port), DEV_DATA=data, DEV_WARM_UP="0",
               TABLE_NAME="users", RUST_LOG="warn")
    log = open(os.path.join(data, "dev.out"), "wb")
    stack = subprocess.Popen([os.path.join(ROOT, "scripts", "dev.sh")], cwd=ROOT, env=env,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        while "ready:" not in open(os.path.join(data, "dev.out"), errors="replace").read():
            if stack.poll() is not None or time.monotonic() - started > 240:
                sys.exit(f"the make dev stack did not get ready; see {data}/dev.out")
            time.sleep(0.25)
        creds = dict(line.split("=", 1) for line in
                     open(os.path.join(data, "dev-credentials")).read().splitlines())
        receiver = Receiver()
        subprocess.run([USERSCTL, "events", "subscribe", "--url", receiver.url], check=True,
                       capture_output=True, env=dict(env, AWS_ACCESS_KEY_ID="local",
                       AWS_SECRET_ACCESS_KEY="local",
                       DYNAMODB_ENDPOINT=f"http://127.0.0.1:{ddb_port}"))
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Token {creds['ADMIN_TOKEN']}",
                   "Content-Type": "application/json"}
        with urllib.request.urlopen(urllib.request.Request(
                base + "/api/users/self", headers=headers), timeout=120) as r:
            uid = json.load(r)["id"]
        latencies = []
        # The first change starts events-publish's and users-update's processes: not counted.
        for i in range(changes + 1):
            body = json.dumps({"first_name": f"Bench{i}"}).encode()
            sent = time.monotonic()
            with urllib.request.urlopen(urllib.request.Request(
                    f"{base}/api/users/{uid}", data=body, method="PATCH", headers=headers),
                    timeout=120):
                pass
            if not receiver.wait_for(i + 1, 30):
                sys.exit(f"change {i}: no SET within 30 s")
            if i:
                latencies.append((receiver.arrivals[i] - sent) * 1000)
        q = statistics.quantiles(latencies, n=20)
        print(f"write -> SET at a subscriber, through make dev's stream follower "
              f"({changes} changes, one at a time): min {min(latencies):.0f} ms, "
              f"p50 {statistics.median(latencies):.0f} ms, p95 {q[18]:.0f} ms, "
              f"max {max(latencies):.0f} ms")
    finally:
        if stack.poll() is None:
            stack.send_signal(signal.SIGTERM)
            stack.wait(timeout=30)


if __name__ == "__main__":
    main()
