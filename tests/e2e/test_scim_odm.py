"""The SCIM API (/api/v1/scim) under the default `odm` profile, through the real `odm_api` client.

ODM semantics (the `odm` profile): POST with an existing userName updates that user (201),
inactive users are hidden (404 / not listed), DELETE only deactivates and the user stays
patchable.
"""

from __future__ import annotations

import json

import pytest
from cvat_sdk.api_client import models as cvat_models
from odm_api import CreateUserRequest, CreateUserRequestEmailsInner, GroupPatchOperationsInner, UserPatch
from odm_api.exceptions import ApiException

from helpers import BASE_URL, create_user, raw
from scim_helpers import (
    ERROR_SCHEMA,
    LIST_SCHEMA,
    PATCH_SCHEMA,
    SCIM_PROFILE,
    USER_SCHEMA,
    WATCH_CONCURRENCY,
    assert_scim_error,
    odm_users_api,
    race,
    race_until,
    scim,
)

pytestmark = pytest.mark.skipif(
    SCIM_PROFILE != "odm", reason=f"the main stack serves SCIM_PROFILE={SCIM_PROFILE}, not odm"
)


@pytest.fixture(scope="module")
def users(admin_token):
    """UsersApi sending `Genestack-API-Token: <t>`."""
    return odm_users_api(admin_token, header="Genestack-API-Token")


@pytest.fixture(scope="module")
def users_bearer(admin_token):
    """UsersApi sending `Authorization: bearer <t>`."""
    return odm_users_api(admin_token, header="Access-token")


def new_user(username: str, *, display_name: str | None = None, email: str | None = None,
             active: bool = True, external_id: str | None = None) -> CreateUserRequest:
    return CreateUserRequest(
        schemas=[USER_SCHEMA],
        userName=username,
        displayName=display_name or f"{username} display",
        active=active,
        emails=[CreateUserRequestEmailsInner(type="work", value=email or f"{username}@example.com",
                                             primary=True)],
        externalId=external_id,
    )


def patch(*operations: dict) -> UserPatch:
    return UserPatch(schemas=[PATCH_SCHEMA],
                     Operations=[GroupPatchOperationsInner(**op) for op in operations])


def error_body(err: ApiException) -> dict:
    body = json.loads(err.body)
    assert body["schemas"] == [ERROR_SCHEMA], body
    assert body["status"] == str(err.status), body
    return body


def find_one(users, flt: str):
    page = users.find_users(filter=flt)
    assert page.total_results == 1, (flt, page)
    assert len(page.resources) == 1
    return page.resources[0]


def uname(run_id: str, tag: str) -> str:
    return f"{run_id}_scim_{tag}"


# --- create, create again, get ------------------------------------------------------------


def test_create_user_returns_201_the_client_parses(users, run_id):
    name = uname(run_id, "create")
    resp = users.create_user_with_http_info(new_user(name, display_name="Ada Lovelace"))
    assert resp.status_code == 201
    user = resp.data
    assert user.id and user.id.isdigit()
    assert user.schemas == [USER_SCHEMA]
    assert (user.user_name, user.display_name, user.active) == (name, "Ada Lovelace", True)
    assert [(e.type, e.value, e.primary) for e in user.emails] == [("work", f"{name}@example.com", True)]
    assert user.meta.resource_type == "User"
    assert user.meta.created is not None and user.meta.last_modified is not None
    headers = {k.lower(): v for k, v in resp.headers.items()}
    assert headers["content-type"].startswith("application/scim+json")
    assert headers["location"].endswith(f"/api/v1/scim/Users/{user.id}")
    assert headers["etag"].startswith('W/"')


def test_create_again_with_the_same_username_updates_that_user(users, users_bearer, run_id):
    name = uname(run_id, "again")
    first = users.create_user(new_user(name, display_name="First Name"))
    resp = users_bearer.create_user_with_http_info(
        new_user(name, display_name="Second Name", email=f"{name}.new@example.com"))
    assert resp.status_code == 201
    assert resp.data.id == first.id
    assert resp.data.display_name == "Second Name"
    assert resp.data.emails[0].value == f"{name}.new@example.com"
    got = users.get_user(first.id)
    assert (got.id, got.user_name, got.display_name) == (first.id, name, "Second Name")
    assert users.find_users(filter=f'userName eq "{name}"').total_results == 1


def test_get_user_with_either_header_form(users, users_bearer, run_id):
    created = users.create_user(new_user(uname(run_id, "get"), external_id=f"ext-{run_id}-get"))
    for api in (users, users_bearer):
        resp = api.get_user_with_http_info(created.id)
        assert resp.status_code == 200
        assert resp.data.id == created.id
        assert resp.data.user_name == created.user_name
        assert resp.data.external_id == f"ext-{run_id}-get"
        assert resp.data.emails[0].value == created.emails[0].value


# --- find_users: filters and paging --------------------------------------------------------


@pytest.fixture(scope="module")
def findable(users, run_id):
    """A user and a decoy sharing its display name, so every filter form must pick the right one."""
    name = uname(run_id, "find")
    decoy = users.create_user(new_user(name + "_decoy", display_name="Find Me"))
    user = users.create_user(new_user(name, display_name="Find Me", email=f"{name}@Example.COM"))
    return user, decoy


@pytest.mark.parametrize("form", [
    'userName eq "{name}"',
    'USERNAME EQ "{upper}"',
    'emails[type eq "work" and value eq "{email}"]',
    'emails[type eq "work" and value eq "{email}"] and userName eq "{name}"',
    'emails[type eq "work"].value eq "{email}"',
    'emails.value eq "{email}" and displayName eq "Find Me"',
    'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "{name}"',
])
def test_find_users_filter_forms(users, users_bearer, findable, form):
    user, _ = findable
    flt = form.format(name=user.user_name, upper=user.user_name.upper(), email=user.emails[0].value.lower())
    for api in (users, users_bearer):
        page = api.find_users(filter=flt)
        assert page.schemas == [LIST_SCHEMA]
        assert page.total_results == 1, (flt, page)
        assert [u.id for u in page.resources] == [user.id], flt


def test_find_users_with_a_filter_matching_nothing(users, run_id):
    page = users.find_users(filter=f'userName eq "{run_id}_nobody"')
    assert (page.total_results, page.items_per_page) == (0, 0)
    assert not page.resources
    combined = users.find_users(filter=f'emails[type eq "work" and value eq "{run_id}_nobody@example.com"]')
    assert combined.total_results == 0


def test_find_users_paging_is_exact_and_stable(users, run_id):
    label = f"{run_id} page"
    created = [users.create_user(new_user(uname(run_id, f"page{i}"), display_name=label)) for i in range(7)]
    ids = [u.id for u in created]
    assert ids == sorted(ids, key=int)
    flt = f'displayName eq "{label}"'

    full = users.find_users(filter=flt)
    assert full.total_results == 7
    assert [u.id for u in full.resources] == ids

    seen = []
    for start, expect in [(1, 3), (4, 3), (7, 1), (8, 0)]:
        page = users.find_users(filter=flt, start_index=start, count=3)
        assert page.total_results == 7
        assert page.start_index == start
        assert page.items_per_page == expect == len(page.resources or [])
        seen += [u.id for u in page.resources or []]
    assert seen == ids
    # The same page twice is the same page.
    again = users.find_users(filter=flt, start_index=4, count=3)
    assert [u.id for u in again.resources] == ids[3:6]
    # count=0 only counts; startIndex below 1 is 1.
    zero = users.find_users(filter=flt, count=0)
    assert (zero.total_results, zero.items_per_page, zero.resources or []) == (7, 0, [])
    low = users.find_users(filter=flt, start_index=0, count=2)
    assert low.start_index == 1 and [u.id for u in low.resources] == ids[:2]


def test_find_users_without_filter_lists_in_id_order(users, findable):
    page = users.find_users(count=1000)
    ids = [int(u.id) for u in page.resources]
    assert ids == sorted(ids)
    assert page.total_results == len(ids)
    assert int(findable[0].id) in ids


# --- patch, delete (= deactivate) ---------------------------------------------------------


def test_patch_user_replaces_display_name_and_active(users, run_id):
    created = users.create_user(new_user(uname(run_id, "patch"), display_name="Before"))
    after = users.patch_user(created.id, patch({"op": "replace", "value": {"displayName": "After"}}))
    assert (after.id, after.display_name, after.active) == (created.id, "After", True)
    assert users.get_user(created.id).display_name == "After"

    off = users.patch_user(created.id, patch({"op": "replace", "value": {"active": False}}))
    assert off.active is False
    with pytest.raises(ApiException) as err:
        users.get_user(created.id)
    assert err.value.status == 404
    assert users.find_users(filter=f'userName eq "{created.user_name}"').total_results == 0

    on = users.patch_user(created.id, patch({"op": "replace", "value": {"active": True}}))
    assert on.active is True
    assert users.get_user(created.id).active is True
    assert find_one(users, f'userName eq "{created.user_name}"').id == created.id


def test_delete_user_deactivates_and_patch_brings_it_back(users, users_bearer, run_id):
    created = users.create_user(new_user(uname(run_id, "delete")))
    resp = users_bearer.delete_user_with_http_info(created.id)
    assert resp.status_code == 204
    with pytest.raises(ApiException) as err:
        users.get_user(created.id)
    assert err.value.status == 404
    assert error_body(err.value)["detail"]
    assert users.find_users(filter=f'userName eq "{created.user_name}"').total_results == 0
    assert created.id not in [u.id for u in users.find_users(count=1000).resources]

    back = users.patch_user(created.id, patch({"op": "replace", "value": {"active": True}}))
    assert (back.id, back.active, back.user_name) == (created.id, True, created.user_name)
    assert users.get_user(created.id).active is True
    assert find_one(users, f'userName eq "{created.user_name}"').id == created.id


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", ["999999999", "not-a-number", "00919288221112222"])
def test_unknown_id_is_404(users, bad_id):
    with pytest.raises(ApiException) as err:
        users.get_user(bad_id)
    assert err.value.status == 404
    assert error_body(err.value)["detail"]
    with pytest.raises(ApiException) as err:
        users.patch_user(bad_id, patch({"op": "replace", "value": {"displayName": "x"}}))
    assert err.value.status == 404
    with pytest.raises(ApiException) as err:
        users.delete_user(bad_id)
    assert err.value.status == 404


@pytest.mark.parametrize("flt, operator", [
    ('userName co "ada"', "co"),
    ('userName sw "ada"', "sw"),
    ('userName eq "a" or userName eq "b"', "or"),
    ('userName pr', "pr"),
])
def test_bad_filter_is_400_invalid_filter(users, flt, operator):
    with pytest.raises(ApiException) as err:
        users.find_users(filter=flt)
    assert err.value.status == 400
    body = error_body(err.value)
    assert body["scimType"] == "invalidFilter"
    assert operator in body["detail"]


def test_malformed_filter_is_400_invalid_filter(users):
    with pytest.raises(ApiException) as err:
        users.find_users(filter='userName eq "unterminated')
    assert err.value.status == 400
    assert error_body(err.value)["scimType"] == "invalidFilter"


def test_non_admin_token_is_403(run_id):
    member = create_user(f"{run_id}_scim_member", email=f"{run_id}.scim.member@example.com", token=True)
    for header in ("Genestack-API-Token", "Access-token"):
        api = odm_users_api(member.token, header=header)
        with pytest.raises(ApiException) as err:
            api.find_users(filter=f'userName eq "{member.username}"')
        assert err.value.status == 403
        assert error_body(err.value)["detail"]
        with pytest.raises(ApiException) as err:
            api.create_user(new_user(f"{run_id}_scim_by_member"))
        assert err.value.status == 403
        with pytest.raises(ApiException) as err:
            api.get_user(str(member.id))
        assert err.value.status == 403


def test_odm_has_no_me_and_no_bulk(admin_token, run_id):
    """ODM's API has neither: they answer as any unknown path (404 to an admin, 403 to others)."""
    member = create_user(f"{run_id}_me_member", email=f"{run_id}.me.member@example.com", token=True)
    bulk = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []}
    for method, path, body in (("GET", "/Me", None), ("POST", "/Bulk", bulk)):
        resp = scim(method, BASE_URL, path, token=admin_token, body=body)
        assert assert_scim_error(resp, 404)["detail"] == f"No such resource: /api/v1/scim{path}"
        assert_scim_error(scim(method, BASE_URL, path, token=member.token, body=body), 403)
    config = scim("GET", BASE_URL, "/ServiceProviderConfig", token=admin_token).body
    assert config["bulk"] == {"supported": False, "maxOperations": 0, "maxPayloadSize": 0}


def test_missing_or_bad_token_is_401():
    for token in (None, "1.not-a-real-token"):
        resp = scim("GET", BASE_URL, "/Users", token=token)
        assert_scim_error(resp, 401)
        assert "www-authenticate" in resp.headers
        with pytest.raises(ApiException) as err:
            odm_users_api(token).find_users()
        assert err.value.status == 401


# --- what an attacker tries (issue 8) ------------------------------------------------------


def test_post_does_not_update_a_user_the_idp_did_not_provision(users, admin_api, run_id):
    """Someone who took the name first (here through usersctl) keeps their own record: the
    IdP's POST is 409, it is not joined to their account."""
    name = uname(run_id, "squat")
    local = create_user(name, email=f"{name}.local@example.com", token=True)
    with pytest.raises(ApiException) as err:
        users.create_user(new_user(name, external_id=f"ext-{run_id}-squat"))
    assert err.value.status == 409
    assert error_body(err.value)["scimType"] == "uniqueness"
    seen = admin_api.retrieve(local.id)[0]
    assert (seen.username, seen.email) == (name, f"{name}.local@example.com")
    assert raw("GET", "/api/users/self", token=local.token).body["id"] == local.id


def test_deactivation_revokes_the_users_token_for_good(users, run_id):
    member = create_user(uname(run_id, "leaver"), email=f"{run_id}.leaver@example.com", token=True)
    assert raw("GET", "/api/users/self", token=member.token).status == 200
    users.delete_user(str(member.id))  # odm: deactivates
    users.patch_user(str(member.id), patch({"op": "replace", "value": {"active": True}}))
    assert users.get_user(str(member.id)).active is True
    assert raw("GET", "/api/users/self", token=member.token).status == 401


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_not_sent_as_json_is_415_and_writes_nothing(users, admin_token, run_id, content_type):
    """What a page on another site can make a browser POST without a CORS preflight."""
    name = uname(run_id, "csrf_" + content_type.split("/")[1][:5])
    resp = scim("POST", BASE_URL, "/Users", token=admin_token,
                body={"schemas": [USER_SCHEMA], "userName": name},
                headers={"Content-Type": content_type})
    assert_scim_error(resp, 415)
    assert users.find_users(filter=f'userName eq "{name}"').total_results == 0


# --- one store, two APIs -------------------------------------------------------------------


def test_change_via_scim_read_via_admin_api(users, admin_api, run_id):
    name = uname(run_id, "cross1")
    created = users.create_user(new_user(name, email=f"{name}@example.com"))
    user_id = int(created.id)
    seen = admin_api.retrieve(user_id)[0]
    assert (seen.username, seen.email, seen.is_active) == (name, f"{name}@example.com", True)

    users.patch_user(created.id, patch({"op": "replace", "value": {
        "userName": name + "_renamed", "emails": [{"type": "work", "value": f"{name}.renamed@example.com"}],
    }}))
    seen = admin_api.retrieve(user_id)[0]
    assert (seen.username, seen.email) == (name + "_renamed", f"{name}.renamed@example.com")

    users.delete_user(created.id)  # odm: deactivates
    assert admin_api.retrieve(user_id)[0].is_active is False


def test_change_via_admin_api_read_via_scim(users, admin_api, admin_token, run_id):
    name = uname(run_id, "cross2")
    created = users.create_user(new_user(name))
    user_id = int(created.id)
    admin_api.partial_update(user_id, patched_user_request=cvat_models.PatchedUserRequest(
        first_name="Grace", last_name="Hopper", email=f"{name}.admin@example.com"))
    got = users.get_user(created.id)
    assert got.emails[0].value == f"{name}.admin@example.com"
    raw = scim("GET", BASE_URL, f"/Users/{created.id}", token=admin_token)
    assert raw.body["name"] == {"givenName": "Grace", "familyName": "Hopper"}

    admin_api.partial_update(user_id, patched_user_request=cvat_models.PatchedUserRequest(is_active=False))
    with pytest.raises(ApiException) as err:
        users.get_user(created.id)
    assert err.value.status == 404
    admin_api.partial_update(user_id, patched_user_request=cvat_models.PatchedUserRequest(is_active=True))
    assert users.get_user(created.id).active is True

    admin_api.destroy(user_id)  # the admin API deletes for good
    with pytest.raises(ApiException) as err:
        users.get_user(created.id)
    assert err.value.status == 404
    with pytest.raises(ApiException) as err:
        users.patch_user(created.id, patch({"op": "replace", "value": {"active": True}}))
    assert err.value.status == 404


# --- races ---------------------------------------------------------------------------------
# These run in parallel: scripts/e2e.sh starts cargo lambda watch with --concurrency 8
# (E2E_WATCH_CONCURRENCY), up to 8 processes per function, each serving one request at a time
# (the "running sequentially" warning in its log is about one process). They go through
# DynamoDB Local, though, which queues overlapping transactions where the service cancels them
# (TransactionConflict): that race is tested in-process against a stand-in that behaves like
# the service (`Faults::contention`, tests/support/faults.rs; tests/failures.rs).


def test_concurrent_creates_of_one_username_leave_one_user(admin_token, users, run_id):
    name = uname(run_id, "race")
    n = 20

    def create(i):
        api = odm_users_api(admin_token)  # one client (connection pool) per thread
        try:
            user = api.create_user(new_user(name, display_name=f"racer {i}"))
            return 201, user.id, None
        except ApiException as err:
            return err.status, None, err.body

    results = race(n, create)
    statuses = sorted(status for status, _, _ in results)
    assert set(statuses) <= {201, 409}, results
    for status, _, body in results:
        if status == 409:
            assert json.loads(body)["status"] == "409", body
    ids = {user_id for status, user_id, _ in results if status == 201}
    assert len(ids) == 1, results
    assert statuses.count(201) >= 1
    only = find_one(users, f'userName eq "{name}"')
    assert only.id in ids
    assert only.display_name in {f"racer {i}" for i in range(n)}


@pytest.mark.skipif(WATCH_CONCURRENCY < 2, reason="cargo lambda watch serves one request at a time")
def test_concurrent_creates_with_new_emails_never_claim_a_false_uniqueness_conflict(admin_token, run_id):
    def create(rnd, i):
        name = uname(run_id, f"emailrace{rnd}")
        return scim("POST", BASE_URL, "/Users", token=admin_token, body={
            "schemas": [USER_SCHEMA], "userName": name, "displayName": f"racer {i}",
            "emails": [{"type": "work", "value": f"{name}.{i}@example.com"}]})

    # ODM: each POST creates or updates the one user; none of the addresses belongs to anyone
    # else, so a 409 may only be "changed concurrently; retry", never uniqueness.
    false_conflicts = race_until(20, create, lambda r: r.status == 409 and
                                 (r.body or {}).get("scimType") == "uniqueness", rounds=5)
    assert not false_conflicts, [r.body for r in false_conflicts]


def test_concurrent_patches_all_land_or_fail_cleanly(admin_token, users, run_id):
    created = users.create_user(new_user(uname(run_id, "patchrace"), display_name="start"))

    def rename(i):
        api = odm_users_api(admin_token)
        try:
            return 200, api.patch_user(created.id, patch({"op": "replace", "value": {"displayName": f"p{i}"}}))
        except ApiException as err:
            return err.status, err.body

    results = race(8, rename)
    assert {status for status, _ in results} <= {200, 409, 412}, results
    final = users.get_user(created.id).display_name
    assert final in {f"p{i}" for i in range(8)}
    assert any(status == 200 for status, _ in results)
