"""The SCIM API under `SCIM_PROFILE=rfc`: scim2-tester (through `scim2 … test`), races, and the
request shapes Okta and Microsoft Entra ID send (shared/notes/scim.md §8–10).

RFC semantics (the `rfc` profile): POST with an existing userName → 409 uniqueness, inactive
users stay visible with `"active": false`, DELETE deletes (404 afterwards).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from urllib.parse import quote

import pytest

from scim_helpers import (
    LIST_SCHEMA,
    PATCH_SCHEMA,
    RFC_ADMIN_TOKEN,
    RFC_BASE_URL,
    SCIM_PATH,
    WATCH_CONCURRENCY,
    USER_SCHEMA,
    assert_scim_error,
    patch_op,
    race,
    race_until,
    scim,
)

pytestmark = pytest.mark.skipif(
    not RFC_BASE_URL, reason="E2E_RFC_BASE_URL is not set: run `make e2e` or `make test`"
)

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def call(method: str, path: str, body: object = None, *, token: str | None = RFC_ADMIN_TOKEN,
         headers: dict | None = None):
    return scim(method, RFC_BASE_URL, path, token=token, body=body, headers=headers)


def query(flt: str, extra: str = "") -> str:
    return f"/Users?filter={quote(flt)}{extra}"


def ok(resp, status: int = 200) -> dict:
    assert resp.status == status, f"expected {status}, got {resp.status}: {resp.body}"
    if resp.body is not None:
        assert resp.headers.get("content-type", "").startswith("application/scim+json"), resp.headers
    return resp.body


def find(flt: str, extra: str = "") -> dict:
    body = ok(call("GET", query(flt, extra)))
    assert body["schemas"] == [LIST_SCHEMA], body
    return body


def okta_user(username: str, *, given: str = "Test", family: str = "User") -> dict:
    """The body Okta POSTs (its SCIM conformance test and its runtime), password and groups included."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": username,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": username, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": "00u" + uuid.uuid4().hex[:17],
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


# --- scim2-tester ---------------------------------------------------------------------------


def scim2_executable() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "scim2")
    found = here if os.path.exists(here) else shutil.which("scim2")
    assert found, "the scim2 console script (scim2-cli) is not installed"
    return found


STATUSES = "SUCCESS|COMPLIANT|ACCEPTABLE|DEVIATION|ERROR|CRITICAL|SKIPPED"


@pytest.fixture(scope="module")
def scim2_test_run():
    """One `scim2 --url … test --verbose` run: (exit code, output, [(status, check name)])."""
    env = dict(os.environ)
    # The token goes in the environment, not on the command line (scim2 --help).
    env["SCIM_CLI_HEADERS"] = f"Authorization: Bearer {RFC_ADMIN_TOKEN}"
    proc = subprocess.run(
        [scim2_executable(), "--url", RFC_BASE_URL + SCIM_PATH, "test", "--verbose"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    results = re.findall(rf"^({STATUSES}) (\S+)$", output, re.MULTILINE)
    return proc.returncode, output, results


def test_scim2_tester_checks_succeed(scim2_test_run):
    code, output, results = scim2_test_run
    print(output)
    assert len(results) >= 40, f"expected the full list of checks, got {len(results)}:\n{output}"
    failed = sorted({name for status, name in results if status != "SUCCESS"})
    assert not failed, f"scim2 test exited {code}; not SUCCESS: {failed}\n{output}"
    assert code == 0, f"scim2 test exited {code} although every check succeeded\n{output}"


def rfc_usersctl(*args: str) -> str:
    """usersctl against the rfc stack's table."""
    env = dict(os.environ, TABLE_NAME=os.environ["E2E_RFC_TABLE_NAME"])
    proc = subprocess.run([os.environ.get("E2E_USERSCTL", "target/debug/usersctl"), *args],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, f"usersctl {args} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout


def test_scim2_tester_checks_succeed_under_a_tenant_base_with_its_token():
    """An org set to `--any` (scim2-tester's names are no email addresses), its own SCIM token
    and its own base: every check of `scim2 … test` is SUCCESS there too, Groups included
    (the tenant's own groups), and the run's users are the tenant's, owned by its org."""
    slug = f"tester{uuid.uuid4().hex[:8]}"
    rfc_usersctl("org", "create", "--slug", slug, "--name", f"Tester {slug}")
    rfc_usersctl("org", "domain", "add", "--slug", slug, "--any")
    token = rfc_usersctl("org", "scim-token", "--slug", slug).strip().splitlines()[-1]
    base = f"{RFC_BASE_URL}{SCIM_PATH}/orgs/{slug}"
    env = dict(os.environ, SCIM_CLI_HEADERS=f"Authorization: Bearer {token}")
    proc = subprocess.run([scim2_executable(), "--url", base, "test", "--verbose"],
                          capture_output=True, text=True, timeout=300, env=env)
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    results = re.findall(rf"^({STATUSES}) (\S+)$", output, re.MULTILINE)
    assert len(results) >= 40, f"expected the full list of checks, got {len(results)}:\n{output}"
    failed = sorted({name for status, name in results if status != "SUCCESS"})
    assert not failed, f"scim2 test under {base} exited {proc.returncode}; not SUCCESS: {failed}\n{output}"
    assert proc.returncode == 0, f"scim2 test exited {proc.returncode}\n{output}"
    # The token that passed every check there is refused at the global base.
    resp = call("GET", "/Users", token=token)
    assert resp.status == 401, resp.body


# --- races ----------------------------------------------------------------------------------
# These run in parallel: scripts/e2e.sh starts cargo lambda watch with --concurrency 8
# (E2E_WATCH_CONCURRENCY), up to 8 processes per function, each serving one request at a time
# (the "running sequentially" warning in its log is about one process). They go through
# DynamoDB Local, though, which queues overlapping transactions where the service cancels them
# (TransactionConflict): that race is tested in-process against a stand-in that behaves like
# the service (`Faults::contention`, tests/support/faults.rs; tests/failures.rs).


def test_concurrent_creates_of_one_username_one_201_rest_409(tag):
    name = f"race-{tag}@example.com"
    n = 24
    results = race(n, lambda i: call("POST", "/Users", {
        "schemas": [USER_SCHEMA], "userName": name, "displayName": f"racer {i}",
        "emails": [{"type": "work", "value": f"racer{i}.{tag}@example.com"}]}))
    statuses = sorted(r.status for r in results)
    assert statuses == [201] + [409] * (n - 1), [(r.status, r.body) for r in results]
    for r in results:
        if r.status == 409:
            assert_scim_error(r, 409, "uniqueness")
    winner = next(r.body for r in results if r.status == 201)
    listed = find(f'userName eq "{name}"')
    assert listed["totalResults"] == 1
    assert [u["id"] for u in listed["Resources"]] == [winner["id"]]


def test_concurrent_creates_with_one_email_one_201_rest_409(tag):
    email = f"shared.{tag}@example.com"
    n = 12
    results = race(n, lambda i: call("POST", "/Users", {
        "schemas": [USER_SCHEMA], "userName": f"email-race-{tag}-{i}",
        "emails": [{"type": "work", "value": email}]}))
    assert sorted(r.status for r in results) == [201] + [409] * (n - 1), \
        [(r.status, r.body) for r in results]
    listed = find(f'emails[type eq "work" and value eq "{email}"]')
    assert listed["totalResults"] == 1


@pytest.mark.skipif(WATCH_CONCURRENCY < 2, reason="cargo lambda watch serves one request at a time")
def test_concurrent_email_changes_never_claim_a_false_uniqueness_conflict(tag):
    created = ok(call("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": f"emailpatch-{tag}",
                                         "emails": [{"value": f"emailpatch.{tag}@example.com"}]}), 201)
    uid = created["id"]

    def change_email(rnd, i):
        return call("PATCH", f"/Users/{uid}", patch_op({
            "op": "replace", "path": 'emails[type eq "work"].value',
            "value": f"emailpatch.{tag}.{rnd}.{i}@example.com"}))

    # Nobody else has any of these addresses: a conflict may only be a retry-later, never 409
    # uniqueness. Rounds go on until one shows the bug (or 8 rounds do not).
    false_conflicts = race_until(8, change_email, lambda r: r.status == 409, rounds=8)
    assert not false_conflicts, [r.body for r in false_conflicts]


# --- Okta: the conformance-test and runtime shapes --------------------------------------


def assert_okta_user_fields(user: dict):
    assert user["id"]
    assert user["name"]["familyName"] and user["name"]["givenName"]
    assert user["userName"]
    assert isinstance(user["active"], bool)
    assert user["emails"][0]["value"]


def test_okta_list_first_user_and_get_it():
    body = ok(call("GET", "/Users?count=1&startIndex=1"))
    assert body["schemas"] == [LIST_SCHEMA]
    for key in ("itemsPerPage", "startIndex", "totalResults"):
        assert isinstance(body[key], int) and not isinstance(body[key], bool), (key, body)
    assert (body["itemsPerPage"], body["startIndex"]) == (1, 1)
    assert body["totalResults"] >= 1 and len(body["Resources"]) == 1
    first = body["Resources"][0]
    assert_okta_user_fields(first)
    got = ok(call("GET", f"/Users/{first['id']}"))
    assert_okta_user_fields(got)
    assert got["id"] == first["id"]


def test_okta_filter_on_absent_username_is_an_empty_list(tag):
    for flt in (f'userName eq "absent-{tag}"', f'userName eq "absent.{tag}@example.com"',
                f'emails.value eq "absent.{tag}@example.com"'):
        body = find(flt, "&startIndex=1&count=100")
        assert body["totalResults"] == 0, body
        assert body.get("Resources", []) == []


@pytest.mark.parametrize("bad_id", ["00919288221112222", str(uuid.uuid4()), "999999999"])
def test_okta_unknown_id_is_404(bad_id):
    assert_scim_error(call("GET", f"/Users/{bad_id}"), 404)


def test_okta_bad_token_is_401():
    resp = call("GET", "/Users?count=1&startIndex=1", token=None, headers={"Authorization": "non-token"})
    assert_scim_error(resp, 401)
    assert "www-authenticate" in resp.headers
    assert_scim_error(call("GET", "/Users", token="1.not-a-real-token"), 401)


def test_okta_create_recreate_and_uppercase_lookup(tag):
    body = okta_user(f"okta.{tag}@example.com", given="Okta", family="Tester")
    created = ok(call("POST", "/Users", body), 201)
    assert created["active"] is True and created["id"]
    assert created["name"] == {"givenName": "Okta", "familyName": "Tester"}
    assert USER_SCHEMA in created["schemas"]
    assert created["userName"] == body["userName"]
    assert "password" not in created and "groups" not in created
    got = ok(call("GET", f"/Users/{created['id']}"))
    assert (got["userName"], got["name"]) == (body["userName"], created["name"])

    again = call("POST", "/Users", body)
    assert_scim_error(again, 409, "uniqueness")

    upper = find(f'userName eq "{body["userName"].upper()}"', "&startIndex=1&count=100")
    assert upper["totalResults"] == 1
    assert upper["Resources"][0]["id"] == created["id"]


def test_okta_deactivate_and_reactivate_by_pathless_patch_and_put(tag):
    created = ok(call("POST", "/Users", okta_user(f"okta.deact.{tag}@example.com")), 201)
    uid = created["id"]
    off = ok(call("PATCH", f"/Users/{uid}", patch_op({"op": "replace", "value": {"active": False}})))
    assert off["active"] is False
    got = ok(call("GET", f"/Users/{uid}"))
    assert got["active"] is False
    listed = find(f'userName eq "{created["userName"]}"')
    assert [(u["id"], u["active"]) for u in listed["Resources"]] == [(uid, False)]
    # AIW apps: everything by PUT of the full resource read before.
    got["active"] = True
    got["name"]["givenName"] = "Renamed"
    put = ok(call("PUT", f"/Users/{uid}", got))
    assert (put["active"], put["name"]["givenName"]) == (True, "Renamed")
    assert ok(call("GET", f"/Users/{uid}"))["name"]["givenName"] == "Renamed"


# --- Microsoft Entra ID ---------------------------------------------------------------------


def test_entra_test_connection_query_is_an_empty_list_response():
    body = find(f'externalId eq "{uuid.uuid4()}"')
    assert body["totalResults"] == 0
    assert body.get("Resources", []) == []


def test_entra_matching_and_patch_shapes(tag):
    email = f"entra.{tag}@example.com"
    external_id = str(uuid.uuid4())
    created = ok(call("POST", "/Users", {
        "schemas": [USER_SCHEMA, ENTERPRISE], "externalId": external_id, "userName": email,
        "active": True, "displayName": "Entra Person",
        "emails": [{"primary": True, "type": "work", "value": email}],
        "name": {"givenName": "Entra", "familyName": "Person"},
        ENTERPRISE: {"employeeNumber": "42"},
    }), 201)
    uid = created["id"]

    for flt in (f'userName eq "{email}"', f'externalId eq "{external_id}"',
                f'emails[type eq "work"].value eq "{email}"'):
        assert [u["id"] for u in find(flt)["Resources"]] == [uid], flt
    assert find(f'externalId eq "{external_id.upper()}"')["totalResults"] == 0  # case-exact

    # Disable: capitalised op, string value.
    ok(call("PATCH", f"/Users/{uid}", patch_op({"op": "Replace", "path": "active", "value": "False"})))
    got = ok(call("GET", f"/Users/{uid}"))
    assert got["active"] is False
    assert find(f'externalId eq "{external_id}"')["Resources"][0]["active"] is False

    new_email = f"entra.moved.{tag}@example.com"
    ok(call("PATCH", f"/Users/{uid}", patch_op(
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": new_email},
        {"op": "Replace", "path": "name.familyName", "value": "Moved"},
        {"op": "Add", "path": f"{ENTERPRISE}:employeeNumber", "value": "43"},
        {"op": "Replace", "path": "active", "value": "True"},
    )))
    got = ok(call("GET", f"/Users/{uid}"))
    assert got["emails"][0]["value"] == new_email and got["emails"][0]["type"] == "work"
    assert got["name"]["familyName"] == "Moved"
    assert got["active"] is True
    assert [u["id"] for u in find(f'emails[type eq "work"].value eq "{new_email}"')["Resources"]] == [uid]

    ok(call("PATCH", f"/Users/{uid}", patch_op(
        {"op": "replace", "value": {"displayName": "Dotted Keys", "name.givenName": "Dotty",
                                    "externalId": external_id + "-2"}})))
    got = ok(call("GET", f"/Users/{uid}"))
    assert (got["displayName"], got["name"]["givenName"], got["externalId"]) == (
        "Dotted Keys", "Dotty", external_id + "-2")

    assert got[ENTERPRISE]["employeeNumber"] == "43"

    # A PATCH of only attributes outside the schema changes nothing.
    version = got["meta"]["version"]
    same = ok(call("PATCH", f"/Users/{uid}", patch_op(
        {"op": "Replace", "path": "urn:example:params:scim:schemas:extension:custom:2.0:User:badge",
         "value": "44"},
        {"op": "Add", "path": "password", "value": "never kept"})))
    assert same["meta"]["version"] == version


# --- The whole User and the enterprise extension: Entra ID's default mapping ------------------


def entra_default_mapping_user(tag: str) -> dict:
    """What Entra ID POSTs with its default attribute mapping (the "Develop a SCIM endpoint"
    tutorial's list): every mapped attribute; the manager follows by PATCH."""
    email = f"entra.full.{tag}@contoso.example"
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": f"adelev{tag}",
        "userName": email,
        "active": True,
        "displayName": "Adele Vance",
        "title": "Retail Manager",
        "preferredLanguage": "en-US",
        "emails": [{"primary": True, "type": "work", "value": email}],
        "name": {"formatted": "Adele Vance", "familyName": "Vance", "givenName": "Adele"},
        "addresses": [{"type": "work", "formatted": "18/2111", "streetAddress": "205 108th Ave NE",
                       "locality": "Bellevue", "region": "WA", "postalCode": "98004",
                       "country": "United States"}],
        "phoneNumbers": [{"type": "work", "value": "+1 425 555 0109"},
                         {"type": "mobile", "value": "+1 425 555 0110"}],
        ENTERPRISE: {"employeeNumber": "1001", "department": "Retail"},
        "meta": {"resourceType": "User"},
        "roles": [],
    }


def test_entra_default_mapping_create_and_patches_are_kept(tag):
    manager = ok(call("POST", "/Users", entra_default_mapping_user(f"mgr{tag}")), 201)
    sent = entra_default_mapping_user(tag)
    created = ok(call("POST", "/Users", sent), 201)
    uid = created["id"]
    assert created["schemas"] == [USER_SCHEMA, ENTERPRISE]
    for key in ("title", "preferredLanguage", "emails", "name", "addresses", "phoneNumbers",
                ENTERPRISE, "externalId", "displayName"):
        assert created[key] == sent[key], (key, created)
    assert ok(call("GET", f"/Users/{uid}")) == created

    # Each PATCH form Entra sends for them, one request after another as it syncs changes.
    patches = [
        ({"op": "Add", "path": f"{ENTERPRISE}:manager", "value": manager["id"]},
         lambda u: u[ENTERPRISE]["manager"]["value"] == manager["id"]
         and u[ENTERPRISE]["manager"]["$ref"].endswith(f"/Users/{manager['id']}")),
        ({"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 425 555 0199"},
         lambda u: {"type": "mobile", "value": "+1 425 555 0199"} in u["phoneNumbers"]),
        ({"op": "Add", "path": "phoneNumbers[type eq \"fax\"].value", "value": "+1 425 555 0111"},
         lambda u: {"type": "fax", "value": "+1 425 555 0111"} in u["phoneNumbers"]),
        ({"op": "Replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Microsoft Way"},
         lambda u: u["addresses"][0]["streetAddress"] == "1 Microsoft Way"
         and u["addresses"][0]["locality"] == "Bellevue"),
        ({"op": "Replace", "path": "title", "value": "Store Manager"},
         lambda u: u["title"] == "Store Manager"),
        ({"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Operations"},
         lambda u: u[ENTERPRISE]["department"] == "Operations"),
        ({"op": "Replace", "value": {ENTERPRISE: {"employeeNumber": "2002", "costCenter": "CC-7"}}},
         lambda u: (u[ENTERPRISE]["employeeNumber"], u[ENTERPRISE]["costCenter"]) == ("2002", "CC-7")),
        ({"op": "Remove", "path": "phoneNumbers[type eq \"work\"].value"},
         lambda u: [p["type"] for p in u["phoneNumbers"]] == ["mobile", "fax"]),
        ({"op": "Replace", "path": "emails[type eq \"work\"].value",
          "value": f"entra.moved.{tag}@contoso.example"},
         lambda u: u["emails"][0]["value"] == f"entra.moved.{tag}@contoso.example"),
        ({"op": "Remove", "path": f"{ENTERPRISE}:manager"},
         lambda u: "manager" not in u[ENTERPRISE]),
    ]
    for op, holds in patches:
        patched = ok(call("PATCH", f"/Users/{uid}", patch_op(op)))
        assert holds(patched), (op, patched)
        assert ok(call("GET", f"/Users/{uid}")) == patched, op

    # A manager must be a user of the directory.
    assert_scim_error(call("PATCH", f"/Users/{uid}", patch_op(
        {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "999999999"})), 400, "invalidValue")
    # Projections name extension attributes by their URN.
    got = ok(call("GET", f"/Users/{uid}?attributes={quote(ENTERPRISE + ':department')},title"))
    assert got == {"schemas": [USER_SCHEMA, ENTERPRISE], "id": uid, "title": "Store Manager",
                   ENTERPRISE: {"department": "Operations"}}, got


def test_okta_full_profile_put_is_kept_and_validates_with_scim2_models(tag):
    from scim2_models import Context, EnterpriseUser, User

    created = ok(call("POST", "/Users", okta_user(f"okta.full.{tag}@example.com")), 201)
    uid = created["id"]
    body = {
        "schemas": [USER_SCHEMA, ENTERPRISE], "id": uid, "userName": created["userName"],
        "name": {"givenName": "Isaac", "familyName": "Brock", "middleName": "K",
                 "honorificPrefix": "Mr.", "honorificSuffix": "III", "formatted": "Mr. Isaac K Brock III"},
        "displayName": "Isaac Brock", "nickName": "Ike", "profileUrl": "https://example.com/isaac",
        "title": "Tour Guide", "userType": "Employee", "preferredLanguage": "en-US",
        "locale": "en-US", "timezone": "America/Los_Angeles", "active": True,
        "emails": [{"value": created["userName"], "type": "work", "primary": True},
                   {"value": f"ike.{tag}@home.example", "type": "home"}],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "addresses": [{"streetAddress": "1 Main St", "locality": "Portland", "region": "OR",
                       "postalCode": "97201", "country": "US", "type": "work", "primary": True}],
        ENTERPRISE: {"employeeNumber": "701984", "costCenter": "4130", "organization": "Universal",
                     "division": "Theme Park", "department": "Tour Operations"},
        "password": "t1meMa$heen", "groups": [],
    }
    put = ok(call("PUT", f"/Users/{uid}", body))
    for key, value in body.items():
        if key not in ("password", "groups"):
            assert put[key] == value, (key, put)
    assert ok(call("GET", f"/Users/{uid}")) == put
    User[EnterpriseUser].model_validate(put, scim_ctx=Context.RESOURCE_REPLACEMENT_RESPONSE)


def test_patch_errors_are_scim_errors(tag):
    created = ok(call("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": f"patcherr-{tag}"}), 201)
    uid = created["id"]
    assert_scim_error(call("PATCH", f"/Users/{uid}", patch_op({"op": "remove"})), 400, "noTarget")
    assert_scim_error(call("PATCH", f"/Users/{uid}", patch_op(
        {"op": "replace", "path": "id", "value": "7"})), 400, "mutability")
    assert_scim_error(call("PATCH", f"/Users/{uid}", patch_op(
        {"op": "remove", "path": "userName"})), 400, "mutability")
    # Atomic: the good first operation did not land either.
    assert_scim_error(call("PATCH", f"/Users/{uid}", patch_op(
        {"op": "replace", "path": "displayName", "value": "half"},
        {"op": "replace", "path": "meta", "value": {}})), 400, "mutability")
    assert ok(call("GET", f"/Users/{uid}"))["displayName"] != "half"


def test_stale_if_match_is_412(tag):
    created = call("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": f"etag-{tag}"})
    uid, etag = created.body["id"], created.headers["etag"]
    ok(call("PATCH", f"/Users/{uid}", patch_op({"op": "replace", "path": "displayName", "value": "v2"}),
            headers={"If-Match": etag}))
    assert_scim_error(call("PATCH", f"/Users/{uid}", patch_op(
        {"op": "replace", "path": "displayName", "value": "v3"}), headers={"If-Match": etag}), 412)
    assert_scim_error(call("DELETE", f"/Users/{uid}", headers={"If-Match": etag}), 412)
    assert ok(call("GET", f"/Users/{uid}"))["displayName"] == "v2"


# --- DELETE: gone for good ------------------------------------------------------------------


def test_delete_is_204_then_404_everywhere(tag):
    name = f"delete-{tag}"
    created = ok(call("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": name,
                                         "emails": [{"value": f"{name}@example.com"}]}), 201)
    uid = created["id"]
    resp = call("DELETE", f"/Users/{uid}")
    assert resp.status == 204 and resp.body is None
    assert_scim_error(call("GET", f"/Users/{uid}"), 404)
    assert_scim_error(call("PATCH", f"/Users/{uid}", patch_op(
        {"op": "replace", "path": "active", "value": True})), 404)
    assert_scim_error(call("PUT", f"/Users/{uid}", {"schemas": [USER_SCHEMA], "userName": name}), 404)
    assert_scim_error(call("DELETE", f"/Users/{uid}"), 404)
    assert find(f'userName eq "{name}"')["totalResults"] == 0
    assert uid not in [u["id"] for u in find('userName eq "' + name + '"').get("Resources", [])]
    # The userName and email are free again.
    again = ok(call("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": name,
                                       "emails": [{"value": f"{name}@example.com"}]}), 201)
    assert again["id"] != uid


# --- /Me (RFC 7644 §3.11) -------------------------------------------------------------------


def rfc_token(username: str) -> str:
    """An API token of a user of the rfc stack's table (usersctl, as an operator issues one)."""
    env = dict(os.environ, TABLE_NAME=os.environ["E2E_RFC_TABLE_NAME"])
    proc = subprocess.run([os.environ.get("E2E_USERSCTL", "target/debug/usersctl"), "token", "create",
                           "--username", username], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_me_reads_and_changes_only_what_is_the_users_own(tag):
    from scim2_models import Context, EnterpriseUser, User

    created = ok(call("POST", "/Users", entra_default_mapping_user(tag)), 201)
    uid, username = created["id"], created["userName"]
    token = rfc_token(username)
    me = call("GET", "/Me", token=token)
    body = ok(me)
    # The token is on the user item: a version past the one created.
    assert {k: v for k, v in body.items() if k != "meta"} == {
        k: v for k, v in created.items() if k != "meta"}, body
    assert me.headers["location"] == body["meta"]["location"] == f"{RFC_BASE_URL}{SCIM_PATH}/Users/{uid}"
    User[EnterpriseUser].model_validate(body, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    # Theirs to change: names, display name, phones, addresses, language, locale, time zone.
    changed = ok(call("PATCH", "/Me", patch_op(
        {"op": "replace", "path": "displayName", "value": "Me Myself"},
        {"op": "add", "path": "phoneNumbers[type eq \"fax\"].value", "value": "+1 555 0100"},
        {"op": "replace", "path": "timezone", "value": "Europe/Paris"}), token=token))
    assert changed["displayName"] == "Me Myself" and changed["timezone"] == "Europe/Paris", changed
    assert {"value": "+1 555 0100", "type": "fax"} in changed["phoneNumbers"], changed
    # Not theirs: the identity provider's and the administrator's attributes.
    for op in ({"op": "replace", "path": "title", "value": "CEO"},
               {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Board"},
               {"op": "replace", "path": "active", "value": False},
               {"op": "replace", "path": "emails[type eq \"work\"].value", "value": f"ceo.{tag}@example.com"}):
        refused = assert_scim_error(call("PATCH", "/Me", patch_op(op), token=token), 403)
        assert "cannot be changed through /Me" in refused["detail"], refused
    after = ok(call("GET", f"/Users/{uid}"))
    assert after == changed, after
    # A PUT of what GET /Me shows, with a locale changed, is theirs too.
    mine = ok(call("GET", "/Me", token=token))
    mine["locale"] = "fr-FR"
    assert ok(call("PUT", "/Me", mine, token=token))["locale"] == "fr-FR"
    assert_scim_error(call("POST", "/Me", {"schemas": [USER_SCHEMA], "userName": f"self-{tag}"},
                           token=token), 501)
    assert_scim_error(call("DELETE", "/Me", token=token), 403)
    ok(call("GET", f"/Users/{uid}"))
    assert_scim_error(call("GET", "/Me", token=None), 401)


# --- /Bulk (RFC 7644 §3.7) ------------------------------------------------------------------

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def bulk(operations: list, **extra):
    from scim2_models import BulkResponse, Context, EnterpriseUser, Group, User

    body = ok(call("POST", "/Bulk", {"schemas": [BULK_REQUEST], "Operations": operations, **extra}))
    BulkResponse[User[EnterpriseUser] | Group].model_validate(body, scim_ctx=Context.BULK_RESPONSE)
    return body["Operations"]


def test_bulk_links_users_and_groups_by_bulk_id_and_validates_with_scim2_models(tag):
    from scim2_models import Context, ServiceProviderConfig

    config = ServiceProviderConfig.model_validate(
        ok(call("GET", "/ServiceProviderConfig")), scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    assert config.bulk.supported and config.bulk.max_operations >= 100, config.bulk
    assert config.bulk.max_payload_size == 1024 * 1024, config.bulk
    ops = bulk([
        {"method": "POST", "path": "/Groups", "bulkId": "team",
         "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                  "displayName": f"Bulk team {tag}", "members": [{"value": "bulkId:lead"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "lead",
         "data": {"schemas": [USER_SCHEMA], "userName": f"lead.{tag}@example.com"}},
        {"method": "POST", "path": "/Users", "bulkId": "member",
         "data": {"schemas": [USER_SCHEMA, ENTERPRISE], "userName": f"member.{tag}@example.com",
                  ENTERPRISE: {"manager": "bulkId:lead"}}},
        {"method": "PATCH", "path": "/Users/bulkId:member",
         "data": {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "path": "title", "value": "Crew"}]}},
        # A cycle: neither is created.
        {"method": "POST", "path": "/Users", "bulkId": "x",
         "data": {"userName": f"x.{tag}", ENTERPRISE: {"manager": "bulkId:y"}}},
        {"method": "POST", "path": "/Users", "bulkId": "y",
         "data": {"userName": f"y.{tag}", ENTERPRISE: {"manager": "bulkId:x"}}},
    ])
    assert [o["status"] for o in ops] == ["201", "201", "201", "200", "409", "409"], ops
    group_id = ops[0]["location"].rsplit("/", 1)[1]
    lead_id = ops[1]["location"].rsplit("/", 1)[1]
    group = ok(call("GET", f"/Groups/{group_id}"))
    assert [m["value"] for m in group["members"]] == [lead_id], group
    member = ok(call("GET", ops[2]["location"].split(SCIM_PATH, 1)[1]))
    assert member["title"] == "Crew" and member[ENTERPRISE]["manager"]["value"] == lead_id, member
    assert find(f'userName eq "x.{tag}"')["totalResults"] == 0


def test_bulk_fail_on_errors_and_limits(tag):
    ops = bulk([
        {"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"userName": "has space"}},
        {"method": "POST", "path": "/Users", "bulkId": "good", "data": {"userName": f"good.{tag}"}},
    ], failOnErrors=1)
    assert [o["status"] for o in ops] == ["400"], ops
    assert find(f'userName eq "good.{tag}"')["totalResults"] == 0
    limit = ok(call("GET", "/ServiceProviderConfig"))["bulk"]["maxOperations"]
    too_many = [{"method": "DELETE", "path": f"/Users/{i}"} for i in range(limit + 1)]
    resp = call("POST", "/Bulk", {"schemas": [BULK_REQUEST], "Operations": too_many})
    assert "maxOperations" in assert_scim_error(resp, 413)["detail"]


# --- RFC 9865 cursor pagination ------------------------------------------------------------


def test_cursor_pages_walk_the_list_once_and_validate_with_scim2_models(tag):
    from scim2_models import Context, EnterpriseUser, ListResponse, ServiceProviderConfig, User

    mine = set()
    for i in range(5):
        name = f"cursor-{tag}-{i}"
        mine.add(int(ok(call("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": name,
                                                "emails": [{"value": f"{name}@example.com"}]}),
                        201)["id"]))
    config = ServiceProviderConfig.model_validate(
        ok(call("GET", "/ServiceProviderConfig")), scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    assert config.pagination.cursor and config.pagination.index
    assert config.pagination.default_pagination_method == "index"
    seen, cursor, pages = [], "", 0
    while True:
        body = ok(call("GET", f"/Users?cursor={quote(cursor)}&count=2"))
        assert "startIndex" not in body, body
        seen += [int(u["id"]) for u in body["Resources"]]
        pages += 1
        if "nextCursor" not in body:
            break
        # Users of other tests have the enterprise extension.
        ListResponse[User[EnterpriseUser]].model_validate(body, scim_ctx=Context.SEARCH_RESPONSE)
        cursor = body["nextCursor"]
    # Other tests create and delete users meanwhile: the walk still goes up
    # by id, never repeats one, and has every user of this test.
    assert seen == sorted(set(seen)), seen
    assert mine <= set(seen), (mine, seen)
    assert pages >= 3
    forged = call("GET", f"/Users?cursor={quote(cursor[:-2])}&count=2")
    assert forged.status == 400 and forged.body["scimType"] == "invalidCursor", forged.body


# --- the whole filter grammar: delta sync, or, sortBy --------------------------------------


def test_a_delta_sync_poll_sees_exactly_what_changed_since_the_last_one(tag):
    """A consuming app's poll: `meta.lastModified gt "<last sync>"`. Other tests write users
    meanwhile, so the answer must hold this test's changes and only users changed since."""
    import time
    from datetime import datetime, timezone

    ids = []
    for i in range(4):
        name = f"delta-{tag}-{i}"
        ids.append(ok(call("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": name,
                                              "emails": [{"value": f"{name}@example.com"}]}),
                      201)["id"])
    time.sleep(1.1)  # the index of changes is read to the second
    last_sync = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(1.1)
    for uid in ids[1:3]:
        ok(call("PATCH", f"/Users/{uid}", patch_op({"op": "replace", "path": "displayName",
                                                     "value": f"Changed {tag}"})))
    poll = find(f'meta.lastModified gt "{last_sync}"', "&count=1000")
    changed = {u["id"] for u in poll["Resources"]}
    assert set(ids[1:3]) <= changed, (ids, changed)
    assert not {ids[0], ids[3]} & changed, (ids, changed)
    def instant(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert all(instant(u["meta"]["lastModified"]) > instant(last_sync)
               for u in poll["Resources"]), poll
    # The same poll narrowed by another condition, and in a SearchRequest.
    mine = find(f'meta.lastModified gt "{last_sync}" and displayName eq "Changed {tag}"')
    assert sorted(u["id"] for u in mine["Resources"]) == sorted(ids[1:3]), mine
    body = ok(call("POST", "/Users/.search", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": f'meta.lastModified ge "{last_sync}" and userName sw "delta-{tag}"'}))
    assert sorted(u["id"] for u in body["Resources"]) == sorted(ids[1:3]), body


def test_or_not_and_the_other_operators_filter_through_the_router(tag):
    names = [f"or-{tag}-{i}" for i in range(3)]
    ids = [ok(call("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": n,
                                      "name": {"givenName": f"G{i}", "familyName": "Or"},
                                      "emails": [{"value": f"{n}@example.com"}]}), 201)["id"]
           for i, n in enumerate(names)]
    body = find(f'userName eq "{names[0]}" or userName eq "{names[2].upper()}"')
    assert sorted(u["id"] for u in body["Resources"]) == sorted([ids[0], ids[2]]), body
    body = find(f'userName sw "or-{tag}" and not (name.givenName eq "G1")')
    assert sorted(u["id"] for u in body["Resources"]) == sorted([ids[0], ids[2]]), body
    body = find(f'emails[value ew "{tag}-1@example.com"] or (userName co "{tag}-2" and '
                f'externalId pr)')
    assert [u["id"] for u in body["Resources"]] == [ids[1]], body
    body = find(f'userName sw "or-{tag}"', "&sortBy=name.givenName&sortOrder=descending")
    assert [u["id"] for u in body["Resources"]] == ids[::-1], body
    bad = call("GET", query("active gt true"))
    assert_scim_error(bad, 400, "invalidFilter")
    assert ok(call("GET", "/ServiceProviderConfig"))["sort"]["supported"] is True


def test_group_filters_and_sorting(tag):
    """Groups take the whole grammar and sortBy too. (After scim2-tester, in this file: its
    search_with_attributes check finds its Group by id among Users and Groups alike, so the
    Groups made before it decide whether a User shares that id.)"""
    def group(name: str) -> str:
        return ok(call("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                           "displayName": name, "members": []}), 201)["id"]

    def ids(flt: str, extra: str = "") -> list[str]:
        body = ok(call("GET", f"/Groups?filter={quote(flt)}{extra}"))
        return [g["id"] for g in body["Resources"]]

    names = [f"Sort {tag} {c}" for c in "cab"]
    gids = {name: group(name) for name in names}
    assert ids(f'displayName sw "sort {tag}" and not (displayName ew " c")',
               "&sortBy=displayName&sortOrder=descending") == [gids[names[2]], gids[names[1]]]
    both = ids(f'displayName eq "{names[0]}" or displayName eq "{names[1]}"',
               "&excludedAttributes=members")
    assert sorted(both, key=int) == sorted([gids[names[0]], gids[names[1]]], key=int)
