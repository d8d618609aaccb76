"""`make dev` as a developer runs it, started in the background the way a script or an IDE
starts it (scripts/dev-test.sh runs this file in `make test`):

- a body that is not UTF-8 gets the function's 400 in the API's own format, as on AWS;
- a receiver subscribed with `usersctl events subscribe` gets the SET of a change in seconds;
- the terminal shows progress, the request log lines and the banner, not the emulator's
  internals, and a fake AWS secret key is neither printed nor written under the data dir;
- TERM to `make` stops every process the stack started, and frees every port, in seconds.

It needs the workspace built (the e2e stage builds it) and uses its own data directory
(DEV_DATA) and free ports, so a developer's `.data/` and running stack are left alone.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import re
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAKE_SECRET = "devtestFAKEsecret" + base64.b32encode(os.urandom(10)).decode()
NOT_UTF8 = b"\x0a\xff\x0b"
READY_SECONDS = 240
STOP_SECONDS = 10
REPORT: list[str] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bound(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def children() -> dict[int, int]:
    """{pid: parent pid} of every process on the machine."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    stat = f.read()
                out[int(name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                pass
    return out


def tree(root: int) -> set[int]:
    """root and every process below it (setsid does not change a parent)."""
    parents = children()
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(p for p, parent in parents.items() if parent == pid and p not in found)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2] != "Z"
    except OSError:
        return False


class Sets:
    """An RFC 8935 receiver: records each SET pushed to it, answers 202."""

    def __init__(self):
        self.tokens: list[tuple[float, str, str]] = []
        received = self.tokens

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((time.time(), self.headers.get("Content-Type", ""),
                                 body.decode()))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def stack():
    data = tempfile.mkdtemp(prefix="make-dev-test-")
    port, ddb_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("E2E_", "DYNAMODB_"))}
    env.update(PORT=str(port), DYNAMODB_PORT=str(ddb_port), DEV_DATA=data, DEV_WARM_UP="0",
               TABLE_NAME="users", AWS_ACCESS_KEY_ID="AKIADEVTESTFAKE",
               AWS_SECRET_ACCESS_KEY=FAKE_SECRET)
    env.pop("AWS_PROFILE", None)
    out_path = os.path.join(tempfile.mkdtemp(prefix="make-dev-out-"), "terminal.txt")
    out = open(out_path, "wb")
    started = time.monotonic()
    make = subprocess.Popen(["make", "--no-print-directory", "dev"], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    def terminal() -> str:
        with open(out_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    while "ready:" not in terminal():
        if make.poll() is not None or time.monotonic() - started > READY_SECONDS:
            make.kill()
            pytest.fail(f"make dev did not get ready:\n{terminal()[-4000:]}")
        time.sleep(0.5)
    REPORT.append(f"make dev ready in {time.monotonic() - started:.1f} s (DEV_WARM_UP=0)")
    creds = dict(line.split("=", 1) for line in
                 open(os.path.join(data, "dev-credentials")).read().splitlines())
    yield {"make": make, "port": port, "ddb_port": ddb_port, "data": data, "env": env,
           "token": creds["ADMIN_TOKEN"], "terminal": terminal,
           "base": f"http://127.0.0.1:{port}"}
    if make.poll() is None:
        make.kill()
        for pid in tree(make.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    out.close()


def call(stack, method: str, path: str, body: bytes | None = None,
         content_type: str = "application/json"):
    req = urllib.request.Request(stack["base"] + path, data=body, method=method, headers={
        "Authorization": f"Token {stack['token']}", "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def admin_id(stack) -> str:
    status, _, body = call(stack, "GET", "/api/users/self")
    assert status == 200, body
    return str(json.loads(body)["id"])


def test_a_body_that_is_not_utf8_gets_the_functions_400_in_each_apis_format(stack):
    uid = admin_id(stack)
    before = call(stack, "GET", f"/api/users/{uid}")[2]
    status, headers, body = call(stack, "PATCH", f"/api/users/{uid}", NOT_UTF8)
    assert status == 400, body
    assert headers["Content-Type"].startswith("application/vnd.cvat+json"), headers
    assert "detail" in json.loads(body), body

    status, headers, body = call(stack, "PATCH", f"/api/v1/scim/Users/{uid}", NOT_UTF8,
                                 "application/scim+json")
    assert status == 400, body
    assert headers["Content-Type"].startswith("application/scim+json"), headers
    error = json.loads(body)
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], error
    assert (error["status"], error["scimType"]) == ("400", "invalidSyntax"), error
    # Nothing was written: the user is as it was.
    assert call(stack, "GET", f"/api/users/{uid}")[2] == before


def test_a_subscriber_gets_the_set_of_a_change_within_seconds(stack):
    receiver = Sets()
    usersctl = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                            "debug", "usersctl")
    env = dict(stack["env"], DYNAMODB_ENDPOINT=f"http://127.0.0.1:{stack['ddb_port']}",
               AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local")
    subprocess.run([usersctl, "events", "subscribe", "--url", receiver.url], env=env,
                   check=True, capture_output=True)
    uid = admin_id(stack)
    wrote = time.time()
    status, _, body = call(stack, "PATCH", f"/api/users/{uid}",
                           json.dumps({"first_name": "Ada"}).encode())
    assert status == 200, body
    while not receiver.tokens and time.time() - wrote < 10:
        time.sleep(0.05)
    assert receiver.tokens, "no SET within 10 s of the change"
    at, content_type, token = receiver.tokens[0]
    REPORT.append(f"write -> SET at the receiver: {(at - wrote) * 1000:.0f} ms")
    assert content_type == "application/secevent+jwt"
    with urllib.request.urlopen(stack["base"] + "/api/v1/scim/.well-known/jwks.json") as r:
        jwks = jwt.PyJWKSet.from_dict(json.load(r))
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(token, next(k for k in jwks.keys if k.key_id == kid).key,
                        algorithms=["ES256"], audience=receiver.url,
                        options={"verify_iat": False})
    assert claims["sub_id"]["uri"] == f"/Users/{uid}", claims
    assert "urn:ietf:params:scim:event:prov:patch:full" in claims["events"], claims


def test_the_terminal_shows_requests_and_the_banner_and_no_secret_anywhere(stack):
    call(stack, "GET", "/api/users/self")
    time.sleep(0.5)
    text = stack["terminal"]()
    assert "ready: curl" in text and "Ctrl-C stops everything" in text, text
    assert "GET /api/users/self -> 200" in text, text
    # cargo lambda watch's own lines (its tracing, cargo's) are in the log file instead.
    for internal in ("spawning command", "INFO", "Running `", "Native fs watcher"):
        assert internal not in text, f"{internal!r} on the terminal:\n{text}"
    assert os.path.getsize(os.path.join(stack["data"], "watch.log")) > 0
    assert FAKE_SECRET not in text
    for folder, _, files in os.walk(stack["data"]):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                assert FAKE_SECRET.encode() not in f.read(), f"the AWS secret key is in {name}"


def test_term_stops_every_process_and_frees_every_port(stack):
    make = stack["make"]
    started = tree(make.pid)
    assert len(started) >= 5, f"make, dev.sh, DynamoDB Local, the front, the watch: {started}"
    watch = re.search(r"starting cargo lambda watch on 127\.0\.0\.1:(\d+)", stack["terminal"]())
    assert watch, stack["terminal"]()
    ports = [stack["port"], stack["ddb_port"], int(watch.group(1))]
    assert all(bound(p) for p in ports)
    os.kill(make.pid, signal.SIGTERM)
    t0 = time.monotonic()
    while time.monotonic() - t0 < STOP_SECONDS:
        left = [p for p in started if alive(p)]
        if not left and not any(bound(p) for p in ports):
            break
        time.sleep(0.1)
    took = time.monotonic() - t0
    REPORT.append(f"TERM -> every process gone, every port free: {took:.1f} s")
    left = {p: open(f"/proc/{p}/cmdline").read().replace("\0", " ")[:120]
            for p in started if alive(p)}
    assert not left, f"still running {STOP_SECONDS} s after TERM: {left}"
    assert not [p for p in ports if bound(p)], "a port is still bound"
    assert make.wait(timeout=5) != 0

