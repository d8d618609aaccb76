"""Schemathesis hooks for tests/e2e/test_openapi.py: keep the fuzzer's writes away from
every record that existed before it started.

The fuzzer runs as an admin of its own against a table the other e2e tests share. Its
ids are random, and small ones (the e2e admin is user 1) are the likeliest: a
`DELETE /api/users/1` or a `PATCH … {"is_active": false}` would lock every later test
out. So a write whose path names a user or group listed in FUZZ_PROTECTED_USERS /
FUZZ_PROTECTED_GROUPS (comma-separated ids, the fuzzer's own included) is never
generated, nor a POST /Users of a userName in FUZZ_PROTECTED_USERNAMES (one a line), nor a group write or bulk request that names such a user or group anywhere
in its body, nor a `/Me` write that touches `active` (the fuzzer would lock itself
out). Reads of anything stay allowed. What is left can only touch what the fuzzer made.

Bodies that are not UTF-8 are not sent either: `cargo lambda watch` answers them
itself (see filter_body).
"""

import json
import os
import re
import unicodedata

import schemathesis

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _ids(name: str) -> set[str]:
    return {i for i in os.environ.get(name, "").split(",") if i}


USERS = _ids("FUZZ_PROTECTED_USERS")
GROUPS = _ids("FUZZ_PROTECTED_GROUPS")
# An odm POST /Users with the userName of a user SCIM made updates that user (the
# identity provider's upsert), and the fuzzer reuses names it saw in responses.
def _folded(name: str) -> str:
    """Near enough the directory's own fold of a name (NFKC, case folded)."""
    return unicodedata.normalize("NFKC", name).casefold()


USERNAMES = {_folded(n) for n in os.environ.get("FUZZ_PROTECTED_USERNAMES", "").split("\n") if n}


def _canonical(value) -> str:
    """The admin API reads `007` and `+7` as user 7 (as Django's int() does); SCIM ids
    are exact, so this protects a little more than it must."""
    text = str(value).strip()
    digits = text.removeprefix("+")
    return str(int(digits)) if digits.isascii() and digits.isdigit() else text


@schemathesis.hook
def filter_path_parameters(ctx, path_parameters):
    op = ctx.operation
    if op.method.upper() not in WRITES or not path_parameters or "id" not in path_parameters:
        return True
    protected = GROUPS if "/Groups/" in op.path else USERS
    return _canonical(path_parameters["id"]) not in protected


def _strings(value):
    """Every string in a JSON value (ids are strings in SCIM bodies)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, (bytes, bytearray)):
        yield bytes(value).decode("utf-8", "replace")


def _named(body) -> set[str]:
    """The ids a group write or bulk request could act on: any string that is one, and
    the ids in a path such as `/Users/7`."""
    named = set()
    for text in _strings(body):
        named.add(_canonical(text))
        named |= {_canonical(i) for i in re.findall(r"(?:Users|Groups)/(\d+)", text)}
    return named


@schemathesis.hook
def filter_body(ctx, body):
    op = ctx.operation
    path = op.path
    if isinstance(body, (bytes, bytearray)):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            # cargo lambda watch answers a body that is not UTF-8 with a 500 of its own,
            # without invoking the function (API Gateway would pass it on, base64-encoded):
            # an emulator limitation, not the API's, so not the fuzzer's to find.
            return False
        try:
            body = json.loads(text)
        except ValueError:
            return True  # not JSON: a 400, and nothing written
    if op.method.upper() not in WRITES:
        return True
    if path.endswith("/Users") and isinstance(body, dict):
        return _folded(str(body.get("userName", ""))) not in USERNAMES
    if path.endswith("/Me"):
        return "active" not in json.dumps(body, default=str).lower()
    if "/Groups" in path or path.endswith("/Bulk"):
        return not (_named(body) & (USERS | GROUPS))
    return True
