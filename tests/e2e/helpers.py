"""Helpers for the end-to-end suite: the real CVAT SDK client against `cargo lambda watch`.

`scripts/e2e.sh` (make test / make e2e) starts the stack and sets:
E2E_BASE_URL, E2E_ADMIN_TOKEN, E2E_ADMIN_USERNAME, E2E_ADMIN_PASSWORD, E2E_USERSCTL,
TABLE_NAME, DYNAMODB_ENDPOINT (plus the AWS region/credentials usersctl needs).
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass

from cvat_sdk.api_client import ApiClient, Configuration

BASE_URL = os.environ.get("E2E_BASE_URL", "").rstrip("/")
USERSCTL = os.environ.get("E2E_USERSCTL", "target/debug/usersctl")

@dataclass
class Person:
    id: int
    username: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    token: str | None = None


def usersctl(*args: str, stdin: str | None = None) -> str:
    """Run the operator CLI against the e2e table; return its stdout."""
    proc = subprocess.run(
        [USERSCTL, *args], input=stdin, capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"usersctl {' '.join(args)} exited {proc.returncode}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc.stdout


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines, "expected output, got none"
    return lines[-1]


def create_user(username: str, *, first_name: str = "", last_name: str = "",
                email: str = "", admin: bool = False, token: bool = False) -> Person:
    args = ["user", "create", "--username", username]
    if email:
        args += ["--email", email]
    if first_name:
        args += ["--first-name", first_name]
    if last_name:
        args += ["--last-name", last_name]
    if admin:
        args.append("--admin")
    user_id = int(last_line(usersctl(*args)))
    person = Person(user_id, username, first_name, last_name, email)
    if token:
        person.token = last_line(usersctl("token", "create", "--username", username))
    return person


def client(*, token: str | None = None, username: str | None = None,
           password: str | None = None) -> ApiClient:
    """An SDK client sending `Authorization: Token <token>` or Basic credentials."""
    config = Configuration(host=BASE_URL, username=username, password=password)
    if token:
        config.api_key["tokenAuth"] = token  # the SDK adds the "Token " prefix
    return ApiClient(config)


@dataclass
class Raw:
    status: int
    headers: dict
    body: object


def raw(method: str, path_or_url: str, *, token: str | None = None,
        body: object = None, headers: dict | None = None) -> Raw:
    """A plain HTTP call, for what the SDK cannot send (unknown fields, odd methods)."""
    url = path_or_url if "://" in path_or_url else BASE_URL + path_or_url
    req = urllib.request.Request(url, method=method)
    if token:
        req.add_header("Authorization", f"Token {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, data=data, timeout=60) as resp:
            status, hdrs, content = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, hdrs, content = err.code, dict(err.headers), err.read()
    return Raw(status, {k.lower(): v for k, v in hdrs.items()},
               json.loads(content) if content else None)


# Lines for the "DynamoDB faults" section of pytest's terminal summary (conftest.py prints
# them): what tests/e2e/test_faults.py saw, whether it passed or not.
FAULT_REPORT: list[str] = []
# The same for the fuzzing stage (tests/e2e/test_openapi.py): time and outcome per stack.
FUZZ_REPORT: list[str] = []

# Lines for the "change events" section of the summary: how fast tests/e2e/test_events.py saw
# its SETs arrive.
EVENTS_REPORT: list[str] = []
