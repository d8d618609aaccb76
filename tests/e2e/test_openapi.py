"""The OpenAPI document on the running stacks: `GET /api/schema` serves docs/openapi.yaml
(YAML or JSON, without credentials), and schemathesis fuzzes both stacks (odm and rfc)
with it.

The fuzzing stage: `schemathesis run` against the served JSON, a fixed seed and at most
FUZZ_EXAMPLES cases per operation (its fuzzing phase: positive and negative data), with
the checks `not_a_server_error` (no 5xx), `response_schema_conformance` and
`content_type_conformance` (every answer has a status, body and media type the document
describes for it) and `ignored_auth` (an operation that needs credentials refuses a
request without them, or with wrong ones). It signs in as an admin of its own, and
tests/e2e/fuzz_hooks.py keeps its writes away from every user and group that existed
before it started; this test then checks that none of them changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema_rs
import pytest
import yaml

from helpers import BASE_URL, FUZZ_REPORT, USERSCTL, create_user, last_line
from scim_helpers import RFC_ADMIN_TOKEN, RFC_BASE_URL, scim

HERE = Path(__file__).resolve().parent
DOCUMENT = HERE.parents[1] / "docs" / "openapi.yaml"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
FUZZ_SEED = int(os.environ.get("E2E_FUZZ_SEED", "19"))
FUZZ_EXAMPLES = int(os.environ.get("E2E_FUZZ_EXAMPLES", "10"))
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance,ignored_auth"


def fetch(url: str, *, accept: str | None = None, token: str | None = None):
    req = urllib.request.Request(url)
    if accept:
        req.add_header("Accept", accept)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.headers.get("content-type"), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("content-type"), err.read().decode()


def test_the_document_is_served_without_credentials_as_yaml_or_json():
    text = DOCUMENT.read_text()
    for path in ("/api/schema", "/api/schema/"):
        assert fetch(BASE_URL + path) == (200, "application/vnd.oai.openapi", text), path
    status, media, body = fetch(BASE_URL + "/api/schema?format=json")
    assert (status, media) == (200, "application/vnd.oai.openapi+json")
    # The JSON is the YAML, read as any YAML reader reads it.
    assert json.loads(body) == yaml.safe_load(text)
    assert fetch(BASE_URL + "/api/schema/?scheme=json", accept="application/json")[:2] == (
        200, "application/json")
    assert fetch(BASE_URL + "/api/schema", accept="application/yaml")[:2] == (200, "application/yaml")
    assert fetch(BASE_URL + "/api/schema?format=xml") == (
        404, "application/json", '{"detail":"Not found."}')
    assert fetch(BASE_URL + "/api/schema", accept="text/html") == (
        406, "application/json", '{"detail":"Could not satisfy the request Accept header."}')


def _conforms(document: dict, schema: str, instance) -> None:
    """`instance` is valid against components/schemas/<schema> of `document`, read as
    JSON Schema reads it (ECMA-262 patterns: `\\w` is ASCII), as schemathesis does."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    jsonschema_rs.validator_for(root).validate(instance)


def test_a_username_in_any_script_is_a_valid_user(run_id, admin_token):
    """Found by the fuzzer (odm, seed 19): a SCIM-made user named `ð` is listed by the
    admin API, as Django would (its `\\w` is Unicode), and CVAT's pattern `^[\\w.@+-]+$`
    refused it (JSON Schema's `\\w` is ASCII): the document has no pattern now."""
    person = create_user(f"jürgen{run_id}")
    status, _, body = fetch(f"{BASE_URL}/api/users/{person.id}", token=admin_token)
    assert status == 200, body
    user = json.loads(body)
    assert user["username"] == f"jürgen{run_id}"
    _conforms(yaml.safe_load(DOCUMENT.read_text()), "MetaUser", user)


def test_a_bulk_operation_without_a_method_is_answered_as_the_document_says():
    """Found by the fuzzer (rfc, seed 7): a BulkRequest operation without `method` is
    answered 400 without one (`method` repeats what was sent), which the document once
    required."""
    if not RFC_BASE_URL:
        pytest.skip("no rfc stack")
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [{"bulkId": "x", "path": "/Users"},
                           {"method": "POST", "path": "/Users", "bulkId": "y"}]}
    answer = scim("POST", RFC_BASE_URL, "/Bulk", token=RFC_ADMIN_TOKEN, body=body)
    assert answer.status == 200, answer.body
    first, second = answer.body["Operations"]
    assert "method" not in first and first["status"] == "400"
    assert first["response"]["scimType"] == "invalidSyntax"
    assert (second["method"], second["status"]) == ("POST", "400")
    _conforms(yaml.safe_load(DOCUMENT.read_text()), "ScimBulkResponse", answer.body)


# ---------------------------------------------------------------- fuzzing

STACKS = {
    "odm": (BASE_URL, "TABLE_NAME"),
    "rfc": (RFC_BASE_URL, "E2E_RFC_TABLE_NAME"),
}


def _fuzz_admin(profile: str, table_env: str) -> tuple[int, str]:
    """An admin of the fuzzer's own, in the stack's table: its id and an API token."""
    env = dict(os.environ, TABLE_NAME=os.environ[table_env])
    name = f"fuzz-admin-{profile}-{int(time.time())}"

    def run(*args: str) -> str:
        proc = subprocess.run([USERSCTL, *args], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return last_line(proc.stdout)

    user_id = int(run("user", "create", "--username", name, "--admin"))
    return user_id, run("token", "create", "--username", name)


def _snapshot(base: str, token: str) -> tuple[dict, dict]:
    """Every user as the admin API shows it whole (but the last login), and every group
    with its members."""
    status, _, body = fetch(base + "/api/users?page_size=all", token=token)
    assert status == 200, body
    users = {u["id"]: {k: v for k, v in u.items() if k != "last_login"}
             for u in json.loads(body)["results"]}
    status, _, body = fetch(base + "/api/v1/scim/Groups?count=1000", token=token)
    assert status == 200, body
    groups = {g["id"]: g for g in json.loads(body).get("Resources", [])}
    return users, groups


def _fuzzed_document(base: str) -> dict:
    """The document the stack serves, less one alternative of the credentials:
    `ignored_auth` probes each scheme with one fixed wrong value, and for Basic that is
    the same username every time, which the directory locks after five failures (429,
    by design: a lock holds for known and unknown names alike). Tokens keep the check
    meaningful: no credentials, and a wrong token of each scheme, must be 401."""
    status, _, body = fetch(base + "/api/schema?format=json")
    assert status == 200, body
    document = json.loads(body)
    document["security"] = [s for s in document["security"] if "basicAuth" not in s]
    # /Me under a tenant base answers 501 by design (the credential is the org's, no
    # user's), which the fuzzer's not_a_server_error counts as a failure.
    for path in [p for p in document["paths"] if p.startswith("/api/v1/scim/orgs/") and p.endswith("/Me")]:
        del document["paths"][path]
    assert document["security"]
    return document


@pytest.mark.parametrize("profile", sorted(STACKS))
def test_fuzzing_finds_no_failure(profile, tmp_path):
    base, table_env = STACKS[profile]
    if not base:
        pytest.skip(f"no {profile} stack")
    fuzzer_id, token = _fuzz_admin(profile, table_env)
    users, groups = _snapshot(base, token)
    env = dict(os.environ,
               PYTHONPATH=str(HERE), SCHEMATHESIS_HOOKS="fuzz_hooks",
               FUZZ_PROTECTED_USERS=",".join(map(str, users)),
               FUZZ_PROTECTED_GROUPS=",".join(groups),
               FUZZ_PROTECTED_USERNAMES="\n".join(u["username"] for u in users.values()))
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(_fuzzed_document(base)))
    args = [str(SCHEMATHESIS), "run", str(document), "--url", base,
            "--header", f"Authorization: Bearer {token}",
            "--checks", CHECKS, "--phases", "fuzzing",
            "--max-examples", str(FUZZ_EXAMPLES), "--seed", str(FUZZ_SEED),
            "--workers", "2", "--request-timeout", "60",
            "--suppress-health-check", "filter_too_much,too_slow",
            "--output-truncate", "false"]
    started = time.monotonic()
    # In a directory of its own: schemathesis keeps a cache of past crashes in the working
    # directory and replays them first, so a run would not be a function of its seed.
    proc = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    summary = [line for line in proc.stdout.splitlines() if line.strip()][-3:]
    FUZZ_REPORT.append(f"{profile}: {seconds:.0f} s, seed {FUZZ_SEED}, "
                       f"{FUZZ_EXAMPLES} examples per operation: " + " | ".join(summary))
    assert proc.returncode == 0, proc.stdout[-20000:] + proc.stderr[-5000:]

    # Its writes stayed away from what was there before it (but its own user).
    after_users, after_groups = _snapshot(base, token)
    del users[fuzzer_id]
    assert {i: after_users.get(i) for i in users} == users
    assert {i: after_groups.get(i) for i in groups} == groups
