#!/usr/bin/env python3
"""Init time of Lambda function binaries, measured against a local Lambda Runtime API.

For each binary, RUNS times: start the process with the environment Lambda gives a
function (AWS_LAMBDA_RUNTIME_API pointing here), and record
  init:  process start -> its first GET /2018-06-01/runtime/invocation/next
         (what Lambda reports as Init Duration: logging set up, config read,
         DynamoDB client built; no network I/O happens before the first poll)
  first: process start -> the response to a first invocation (an API Gateway v2
         GET of the function's own route without credentials: a 401 that needs
         no DynamoDB call, so it measures the handler path, not the network)
then stop the process. Prints the median and the range per binary.

usage: bench-init.py RUNS BINARY[=ROUTE] ...
"""

import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time

API = "/2018-06-01/runtime"


class Runtime(http.server.ThreadingHTTPServer):
    """The Runtime API for ONE run of one process, on its own port.

    A server shared across runs served stale requests: a killed process's last
    poll could still sit in the listen backlog (or in a handler thread) when the
    next run began, so the server answered it as the new process's first poll,
    wrote the event to a dead socket (broken pipe), marked the event served and
    then held the real process's poll until the 30 s timeout. A fresh server per
    run, closed before the next one starts, cannot see another run's requests.
    """

    daemon_threads = True

    def __init__(self, event: dict):
        super().__init__(("127.0.0.1", 0), Handler)
        self.event = event
        self.first_poll = None
        self.response_at = None
        self.response_body = None
        self.served = False
        self.lock = threading.Lock()
        self.done = threading.Event()     # the function answered its invocation
        self.stopped = threading.Event()  # the run is over: release held polls

    def close(self):
        self.stopped.set()
        self.shutdown()
        self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    server: Runtime

    def log_message(self, *args):
        pass

    def do_GET(self):
        now = time.perf_counter()
        if self.path != f"{API}/invocation/next":
            self.send_error(404)
            return
        srv = self.server
        with srv.lock:
            if srv.first_poll is None:
                srv.first_poll = now
            serve = not srv.served
            srv.served = True
        if not serve:
            # The function is idle after its one invocation: hold the poll, as
            # Lambda does, until the run is over (the process is killed first).
            srv.stopped.wait()
            return
        body = json.dumps(srv.event).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-request-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                         "arn:aws:lambda:us-east-1:123456789012:function:bench")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        now = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.endswith("/response") or self.path.endswith("/error"):
            srv = self.server
            with srv.lock:
                if srv.response_at is None:
                    srv.response_at = now
                    srv.response_body = body
            srv.done.set()
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def api_gateway_event(route: str) -> dict:
    """An API Gateway HTTP API (payload 2.0) request without credentials."""
    method, path = route.split(" ", 1)
    return {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "bench.local", "accept": "*/*"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.local",
            "domainPrefix": "bench",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "bench-init"},
            "requestId": "bench-request-1",
            "routeKey": route,
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000,
        },
        "isBase64Encoded": False,
    }


def function_env(port: int, name: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/bench/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        # Nothing listens there: init must not need DynamoDB.
        "DYNAMODB_ENDPOINT": "http://127.0.0.1:1",
        "TABLE_NAME": "bench",
        "SCIM_PROFILE": "odm",
        "RUST_LOG": "warn",
    })
    return env


def measure(binary: str, route: str) -> tuple[float, float, int]:
    server = Runtime(api_gateway_event(route))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = os.path.basename(binary)
    env = function_env(server.server_address[1], name)
    started = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not server.done.wait(30):
            proc.kill()
            raise SystemExit(f"{name}: no response within 30 s; stderr:\n{proc.stderr.read().decode()}")
    finally:
        proc.kill()
        proc.wait()
        server.close()
    status = json.loads(server.response_body or b"{}").get("statusCode", 0)
    return (server.first_poll - started) * 1000, (server.response_at - started) * 1000, status


def main():
    runs = int(sys.argv[1])
    targets = [arg.split("=", 1) if "=" in arg else (arg, "GET /api/users/self") for arg in sys.argv[2:]]
    print(f"{'function':<20}{'init (start -> first poll)':>30}{'first response':>24}   status")
    for binary, route in targets:
        measure(binary, route)  # warm the page cache; not counted
        samples = [measure(binary, route) for _ in range(runs)]
        init = [s[0] for s in samples]
        first = [s[1] for s in samples]
        statuses = sorted({s[2] for s in samples})
        print(f"{os.path.basename(binary):<20}"
              f"{statistics.median(init):>11.1f} ms ({min(init):.1f}-{max(init):.1f})"
              f"{statistics.median(first):>11.1f} ms ({min(first):.1f}-{max(first):.1f})"
              f"   {','.join(map(str, statuses))}  [{route}]")
    print(f"median of {runs} runs each; host build ({os.uname().machine}), not Lambda's arm64")


if __name__ == "__main__":
    main()
