"""usersctl when DynamoDB fails: one line naming the endpoint, the cause and what to do, a
non-zero exit, and within the client's time budget (connect 1 s, attempt 1.5 s, operation 4 s:
shared/src/store/client.rs), never a hang.

Runs the built binary (E2E_USERSCTL, set by scripts/e2e.sh) against a port nobody listens on,
against the e2e DynamoDB Local with a table that does not exist, and against a stub that answers
every call the way DynamoDB does when it throttles, fails, rejects the credentials or hangs.
Also `usersctl user unlock` against the running stack: it lifts the lock of failed logins.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import Raw, raw, usersctl

USERSCTL = os.environ.get("E2E_USERSCTL", "")
pytestmark = pytest.mark.skipif(not USERSCTL, reason="E2E_USERSCTL is not set: run `make e2e`")

# Well under the 30 s an unbounded SDK default could take; the budget allows about 4 s per call.
LIMIT_SECONDS = 10


def run(*args: str, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run([USERSCTL, *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=60)
    return proc, time.monotonic() - started


def assert_fails_saying(proc: subprocess.CompletedProcess, seconds: float, *words: str):
    assert proc.returncode != 0, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("usersctl: "), proc.stderr
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    assert seconds < LIMIT_SECONDS, f"took {seconds:.1f} s: {lines[0]}"


def closed_port() -> int:
    """A port that was free a moment ago; nothing listens on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args", [["table", "create"], ["user", "create", "--username", "x"]])
def test_nothing_listening_is_connection_refused(args):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    proc, seconds = run(*args, DYNAMODB_ENDPOINT=endpoint)
    assert_fails_saying(proc, seconds, f"cannot reach DynamoDB at {endpoint}: connection refused",
                        "make dev")


def test_missing_table_says_to_create_it():
    table = f"missing_{secrets.token_hex(4)}"
    proc, seconds = run("token", "create", "--username", "x", TABLE_NAME=table)
    endpoint = os.environ["DYNAMODB_ENDPOINT"]
    assert_fails_saying(proc, seconds, f"table {table} does not exist on DynamoDB at {endpoint}",
                        "usersctl table create")


class StubDynamoDB(BaseHTTPRequestHandler):
    """Answers every call with the error `server.answer` names, or not at all ("hang")."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.server.answer == "hang":
            self.server.released.wait(30)
            return
        status, code = self.server.answer
        body = f'{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"stub"}}'.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubDynamoDB)
    server.daemon_threads = True
    server.released = threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.released.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("answer, words", [
    ((400, "ThrottlingException"), ["is throttling requests (ThrottlingException)", "try again"]),
    ((500, "InternalServerError"), ["failed to answer (InternalServerError)", "try again"]),
    ((400, "UnrecognizedClientException"),
     ["rejected the AWS credentials (UnrecognizedClientException)", "AWS_PROFILE"]),
    ((400, "AccessDeniedException"), ["denied access to table", "permissions"]),
    ("hang", ["did not answer in time", "try again"]),
], ids=["throttled", "server-error", "bad-credentials", "access-denied", "hang"])
def test_dynamodb_failures_are_named_with_what_to_do(stub, answer, words):
    stub.answer = answer
    endpoint = f"http://127.0.0.1:{stub.server_address[1]}"
    proc, seconds = run("table", "create", DYNAMODB_ENDPOINT=endpoint)
    assert_fails_saying(proc, seconds, f"DynamoDB at {endpoint}", *words)


def basic(username: str, password: str) -> dict:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def lock_out(username: str) -> Raw:
    """Five wrong passwords, then one more attempt: the 429 of the lock."""
    for guess in range(5):
        r = raw("GET", "/api/users/self", headers=basic(username, f"guess-{guess}"))
        assert r.status == 401, r
    r = raw("GET", "/api/users/self", headers=basic(username, "guess-5"))
    assert r.status == 429, r
    assert 1 <= int(r.headers["retry-after"]) <= 30, r.headers
    assert r.body["detail"].startswith("Request was throttled. Expected available in "), r.body
    return r


def test_unlock_lifts_the_lock_of_failed_logins():
    """Five wrong passwords lock a username, in every container (the count is in DynamoDB);
    `usersctl user unlock` lifts it, for a user's name and for a name nobody holds."""
    name = f"e2e{secrets.token_hex(3)}_locked"
    password = secrets.token_urlsafe(16)
    usersctl("user", "create", "--username", name, "--password-stdin", stdin=password)

    lock_out(name)
    r = raw("GET", "/api/users/self", headers=basic(name, password))
    assert r.status == 429, "the right password does not open a locked name"

    out = usersctl("user", "unlock", "--username", name)
    assert f"unlocked {name}" in out and "5 failed logins forgotten" in out, out
    r = raw("GET", "/api/users/self", headers=basic(name, password))
    assert r.status == 200, r
    assert r.body["username"] == name
    out = usersctl("user", "unlock", "--username", name)
    assert "no failed logins on record" in out, out

    # A name nobody holds locks the same way (a 429 does not tell whether a name exists).
    ghost = f"e2e{secrets.token_hex(3)}_ghost"
    lock_out(ghost)
    out = usersctl("user", "unlock", "--username", ghost)
    assert f"unlocked {ghost} (no such user)" in out, out
    r = raw("GET", "/api/users/self", headers=basic(ghost, "guess-6"))
    assert r.status == 401, r


def test_org_adopt_leaves_groups_alone_and_says_so():
    # Orgs made by `org create` are Groups already; adopting (after an upgrade) changes nothing,
    # however often it runs. Adopting an org from before Groups: tests/groups.rs.
    table = f"adopt_{secrets.token_hex(4)}"
    for args in (["table", "create"], ["org", "create", "--slug", "acme", "--name", "Acme"]):
        proc, _ = run(*args, TABLE_NAME=table)
        assert proc.returncode == 0, proc
    for _ in range(2):
        proc, seconds = run("org", "adopt", TABLE_NAME=table)
        assert proc.returncode == 0, proc
        assert proc.stdout.strip().splitlines()[-1] == \
            "1 orgs: 0 adopted, 1 already groups, 0 refused", proc.stdout
        assert seconds < LIMIT_SECONDS
