"""Helpers for the SCIM end-to-end suites (test_scim_odm.py, test_scim_rfc.py).

`scripts/e2e.sh` serves two stacks, each with its own table:
- E2E_BASE_URL / E2E_ADMIN_TOKEN: the main one, `SCIM_PROFILE` = E2E_SCIM_PROFILE (default `odm`);
- E2E_RFC_BASE_URL / E2E_RFC_ADMIN_TOKEN: a second `cargo lambda watch` with `SCIM_PROFILE=rfc`.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import odm_api

from helpers import BASE_URL, Raw

SCIM_PATH = "/api/v1/scim"
SCIM_PROFILE = os.environ.get("E2E_SCIM_PROFILE", "odm")
RFC_BASE_URL = os.environ.get("E2E_RFC_BASE_URL", "").rstrip("/")
RFC_ADMIN_TOKEN = os.environ.get("E2E_RFC_ADMIN_TOKEN", "")
# `cargo lambda watch --concurrency`: instances per function, so requests really run in parallel.
WATCH_CONCURRENCY = int(os.environ.get("E2E_WATCH_CONCURRENCY", "1"))

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def odm_users_api(token: str | None, *, header: str = "Genestack-API-Token",
                  base_url: str = BASE_URL) -> odm_api.UsersApi:
    """The ODM client's UsersApi, sending the token as `Genestack-API-Token: <t>` or, with
    header="Access-token", as `Authorization: bearer <t>` (the two schemes the client knows)."""
    if header == "Genestack-API-Token":
        cfg = odm_api.Configuration(host=base_url, api_key={"Genestack-API-Token": token} if token else None)
    elif header == "Access-token":
        cfg = odm_api.Configuration(host=base_url, api_key={"Access-token": token} if token else None,
                                    api_key_prefix={"Access-token": "bearer"})
    else:
        raise ValueError(header)
    return odm_api.UsersApi(odm_api.ApiClient(cfg))


def scim(method: str, base_url: str, path: str, *, token: str | None = None,
         body: object = None, headers: dict | None = None) -> Raw:
    """A plain SCIM call: `Authorization: Bearer <token>`, `application/scim+json` body.
    `path` is relative to {base_url}/api/v1/scim and may carry a query string."""
    req = urllib.request.Request(base_url + SCIM_PATH + path, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/scim+json")
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, data=data, timeout=120) as resp:
            status, hdrs, content = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, hdrs, content = err.code, dict(err.headers), err.read()
    return Raw(status, {k.lower(): v for k, v in hdrs.items()},
               json.loads(content) if content else None)


def assert_scim_error(resp: Raw, status: int, scim_type: str | None = None) -> dict:
    """`resp` is a SCIM Error with this status (and scimType); returns the body."""
    assert resp.status == status, f"expected {status}, got {resp.status}: {resp.body}"
    assert resp.headers.get("content-type", "").startswith("application/scim+json"), resp.headers
    body = resp.body
    assert isinstance(body, dict), body
    assert body.get("schemas") == [ERROR_SCHEMA], body
    assert body.get("status") == str(status), body
    assert body.get("detail"), body
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


def patch_op(*operations: dict) -> dict:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def race(n: int, call) -> list:
    """Run call(i) for i in range(n) on n threads released together; the results in order."""
    barrier = Barrier(n)

    def one(i):
        barrier.wait(timeout=60)
        return call(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def race_until(n: int, call, bad, *, rounds: int) -> list:
    """Up to `rounds` races of call(round, i) on n threads; stops after the first round in which
    some result is bad(result), and returns those results (empty if no round had any)."""
    for rnd in range(rounds):
        found = [r for r in race(n, lambda i: call(rnd, i)) if bad(r)]
        if found:
            return found
    return []
