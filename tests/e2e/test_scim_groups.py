"""SCIM Groups (/api/v1/scim/Groups), which are organisations: one org, one group.

Replays of what Okta (Group Push) and Microsoft Entra ID send, then one focused test per rule,
on both stacks (`stack` fixture): the main one (SCIM_PROFILE=odm, which hides deactivated users;
groups behave the same) and the rfc one. Also where groups meet the rest: `usersctl org`, the
admin API's `?org=` and `X-Organization` (main stack only where usersctl makes the users, since
it writes the main table).

A group's id is its org's id; its org's slug comes from the first displayName (lowercased, runs
of anything but letters and digits one '-', cut to 16: shared/src/store/groups.rs
`slug_candidates`), so tests that need the slug use names like f"grp{tag}", whose slug is the
name itself.
"""

from __future__ import annotations

import os
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pytest

from helpers import BASE_URL, Raw, create_user, last_line, raw, usersctl
from scim_helpers import (
    LIST_SCHEMA,
    RFC_ADMIN_TOKEN,
    RFC_BASE_URL,
    SCIM_PATH,
    USER_SCHEMA,
    assert_scim_error,
    patch_op,
    race,
    scim,
)

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
# Entra ID's own extension URN, in the schemas of the groups it creates.
ENTRA_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group"
# A user id and a group id nobody has.
NO_SUCH_ID = "999999999999"


# --- the two stacks -------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    name: str
    base_url: str
    token: str

    def call(self, method: str, path: str, body: object = None, *,
             headers: dict | None = None) -> Raw:
        return scim(method, self.base_url, path, token=self.token, body=body, headers=headers)

    def ref(self, kind: str, id_: str) -> str:
        return f"{self.base_url}{SCIM_PATH}/{kind}/{id_}"

    def admin_api(self, path: str, *, token: str | None = None,
                  headers: dict | None = None) -> Raw:
        """The admin users API (/api/users) of this stack, as its admin unless `token`."""
        return raw("GET", self.base_url + path, token=token or self.token, headers=headers)


MAIN = Stack("main", BASE_URL, os.environ.get("E2E_ADMIN_TOKEN", ""))
RFC = Stack("rfc", RFC_BASE_URL, RFC_ADMIN_TOKEN)


@pytest.fixture(params=[MAIN, RFC], ids=lambda s: s.name)
def stack(request) -> Stack:
    if not request.param.base_url:
        pytest.skip(f"the {request.param.name} stack is not running: run `make e2e`")
    return request.param


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


# --- helpers --------------------------------------------------------------------------------


def ok(resp: Raw, status: int = 200) -> dict:
    assert resp.status == status, f"expected {status}, got {resp.status}: {resp.body}"
    assert resp.headers.get("content-type", "").startswith("application/scim+json"), resp.headers
    return resp.body


def no_content(resp: Raw) -> str:
    """A PATCH's 204: no body, an ETag; returns the ETag."""
    assert resp.status == 204, f"expected 204, got {resp.status}: {resp.body}"
    assert resp.body is None, resp.body
    etag = resp.headers.get("etag", "")
    assert re.fullmatch(r'W/"\d+"', etag), resp.headers
    return etag


def query(**params) -> str:
    given = {k: v for k, v in params.items() if v is not None}
    return "?" + urlencode(given, quote_via=quote) if given else ""


def new_user(stack: Stack, name: str) -> str:
    """A user made through SCIM; its id."""
    email = f"{name}@example.com"
    return ok(stack.call("POST", "/Users", {
        "schemas": [USER_SCHEMA], "userName": email, "active": True,
        "name": {"givenName": "Group", "familyName": "Member"},
        "emails": [{"type": "work", "value": email, "primary": True}],
    }), 201)["id"]


def new_users(stack: Stack, tag: str, n: int) -> list[str]:
    """n users made through SCIM (8 at a time), in id order."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda i: new_user(stack, f"gm{i}.{tag}"), range(n)))
    return sorted(ids, key=int)


def group_body(name: str, *, members: list[str] | None = None,
               external_id: str | None = None) -> dict:
    body = {"schemas": [GROUP_SCHEMA], "displayName": name}
    if external_id is not None:
        body["externalId"] = external_id
    if members is not None:
        body["members"] = [{"value": uid} for uid in members]
    return body


def new_group(stack: Stack, name: str, members: list[str] | None = None,
              external_id: str | None = None) -> dict:
    return ok(stack.call("POST", "/Groups", group_body(name, members=members,
                                                       external_id=external_id)), 201)


def get_group(stack: Stack, gid: str, **params) -> dict:
    return ok(stack.call("GET", f"/Groups/{gid}{query(**params)}"))


def find_groups(stack: Stack, flt: str | None = None, **params) -> dict:
    body = ok(stack.call("GET", "/Groups" + query(filter=flt, **params)))
    assert body["schemas"] == [LIST_SCHEMA], body
    return body


def ids_of(listed: dict) -> list[str]:
    return [g["id"] for g in listed.get("Resources", [])]


def member_ids(group: dict) -> list[str]:
    return [m["value"] for m in group["members"]]


def in_order(ids) -> list[str]:
    return sorted(ids, key=int)


def members_now(stack: Stack, gid: str) -> list[str]:
    return member_ids(get_group(stack, gid))


def patch(stack: Stack, gid: str, *operations: dict, **params) -> Raw:
    return stack.call("PATCH", f"/Groups/{gid}{query(**params)}", patch_op(*operations))


def add(*uids: str) -> dict:
    return {"op": "add", "path": "members", "value": [{"value": uid} for uid in uids]}


def groups_of_user(stack: Stack, uid: str) -> list[str]:
    """The ids in a user's read-only `groups` (absent or [] when none)."""
    user = ok(stack.call("GET", f"/Users/{uid}"))
    return [g["value"] for g in user.get("groups", [])]


def assert_group(stack: Stack, group: dict, *, name: str, members: list[str],
                 external_id: str | None = None):
    """The whole resource of the contract: schemas, id, externalId, displayName, members
    (ascending user id, each with its $ref and type), meta."""
    assert group["schemas"] == [GROUP_SCHEMA], group
    gid = group["id"]
    assert isinstance(gid, str) and gid.isdigit(), group
    assert group["displayName"] == name, group
    if external_id is None:
        assert "externalId" not in group, group
    else:
        assert group["externalId"] == external_id, group
    want = [{"value": uid, "$ref": stack.ref("Users", uid), "type": "User"}
            for uid in in_order(members)]
    assert [{k: m.get(k) for k in ("value", "$ref", "type")} for m in group["members"]] == want
    meta = group["meta"]
    assert meta["resourceType"] == "Group", meta
    assert meta["location"] == stack.ref("Groups", gid), meta
    assert re.fullmatch(r'W/"\d+"', meta["version"]), meta
    assert meta["created"] and meta["lastModified"], meta


def slug_of(name: str) -> str:
    """The org slug a group made through SCIM gets from its first displayName."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:16].rstrip("-")


def org_member_ids(stack: Stack, slug: str) -> Raw:
    return stack.admin_api(f"/api/users?org={quote(slug)}&sort=id&page_size=all")


# --- Okta Group Push ------------------------------------------------------------------------


def test_okta_group_push_sequence(stack, tag):
    """Okta: create empty, import-style list, rename carrying the id, membership PATCHes
    (add several; remove by filter + add in one PATCH; replace the list, then with []),
    delete."""
    u1, u2, u3 = new_users(stack, tag, 3)
    name = f"Okta Eng {tag}"

    resp = stack.call("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": name,
                                          "members": []})
    created = ok(resp, 201)
    assert_group(stack, created, name=name, members=[])
    gid = created["id"]
    assert resp.headers["location"] == created["meta"]["location"]
    assert resp.headers["etag"] == created["meta"]["version"]

    # Okta's import: pages of startIndex/count until totalResults, in id order.
    seen, start = [], 1
    while True:
        page = find_groups(stack, startIndex=start, count=100)
        assert page["startIndex"] == start
        assert page["itemsPerPage"] == len(page.get("Resources", [])) <= 100
        seen += ids_of(page)
        start += 100
        if start > page["totalResults"]:
            break
    assert len(seen) == page["totalResults"]
    assert seen == in_order(seen) and gid in seen

    renamed = f"Okta Eng {tag} renamed"
    no_content(patch(stack, gid, {"op": "replace", "value": {"id": gid, "displayName": renamed}}))
    assert get_group(stack, gid)["displayName"] == renamed
    assert find_groups(stack, f'displayName eq "{name}"')["totalResults"] == 0

    # Okta sends its users' login as `display`: ignored, the member is the value.
    no_content(patch(stack, gid, {"op": "add", "path": "members", "value": [
        {"value": u1, "display": f"gm0.{tag}@example.com"},
        {"value": u2, "display": f"gm1.{tag}@example.com"}]}))
    assert members_now(stack, gid) == [u1, u2]
    assert groups_of_user(stack, u2) == [gid]

    no_content(patch(stack, gid,
                     {"op": "remove", "path": f'members[value eq "{u1}"]'},
                     {"op": "add", "path": "members", "value": [{"value": u3, "display": "x"}]}))
    assert members_now(stack, gid) == [u2, u3]
    assert groups_of_user(stack, u1) == []

    no_content(patch(stack, gid, {"op": "replace", "path": "members",
                                  "value": [{"value": u3}, {"value": u1}]}))
    assert members_now(stack, gid) == [u1, u3]
    no_content(patch(stack, gid, {"op": "replace", "path": "members", "value": []}))
    final = get_group(stack, gid)
    assert_group(stack, final, name=renamed, members=[])
    assert [groups_of_user(stack, u) for u in (u1, u2, u3)] == [[], [], []]

    resp = stack.call("DELETE", f"/Groups/{gid}")
    assert (resp.status, resp.body) == (204, None)
    assert_scim_error(stack.call("GET", f"/Groups/{gid}"), 404)


# --- Microsoft Entra ID ---------------------------------------------------------------------


def test_entra_group_provisioning_sequence(stack, tag):
    """Entra: match by displayName (members excluded), create, read by id without members,
    capitalised ops with member lists ("$ref": null as Entra sends them), then Replace of
    displayName and externalId; every PATCH a 204."""
    u1, u2, u3 = new_users(stack, tag, 3)
    name, external_id = f"Entra Sales {tag}", str(uuid.uuid4())
    match = f'displayName eq "{name}"'

    empty = find_groups(stack, match, excludedAttributes="members")
    assert empty["totalResults"] == 0 and empty.get("Resources", []) == []

    created = ok(stack.call("POST", "/Groups", {
        "schemas": [GROUP_SCHEMA, ENTRA_GROUP_SCHEMA], "externalId": external_id,
        "displayName": name, "meta": {"resourceType": "Group"}}), 201)
    assert_group(stack, created, name=name, members=[], external_id=external_id)
    gid = created["id"]

    got = get_group(stack, gid, excludedAttributes="members")
    assert "members" not in got, got
    assert (got["id"], got["displayName"], got["externalId"]) == (gid, name, external_id)
    listed = find_groups(stack, match, excludedAttributes="members")
    assert ids_of(listed) == [gid]
    assert "members" not in listed["Resources"][0]

    no_content(patch(stack, gid, {"op": "Add", "path": "members", "value": [
        {"$ref": None, "value": u1}, {"$ref": None, "value": u2}, {"$ref": None, "value": u3}]}))
    assert members_now(stack, gid) == [u1, u2, u3]
    no_content(patch(stack, gid, {"op": "Remove", "path": "members",
                                  "value": [{"$ref": None, "value": u2}]}))
    assert members_now(stack, gid) == [u1, u3]

    new_name, new_external_id = f"Entra Sales {tag} EMEA", str(uuid.uuid4())
    no_content(patch(stack, gid, {"op": "Replace", "path": "displayName", "value": new_name}))
    no_content(patch(stack, gid, {"op": "Replace", "path": "externalId", "value": new_external_id}))

    final = get_group(stack, gid)
    assert_group(stack, final, name=new_name, members=[u1, u3], external_id=new_external_id)
    assert ids_of(find_groups(stack, f'externalId eq "{new_external_id}"')) == [gid]
    assert find_groups(stack, f'externalId eq "{external_id}"')["totalResults"] == 0
    assert find_groups(stack, match)["totalResults"] == 0


# --- create ---------------------------------------------------------------------------------


def test_create_with_members_is_201_and_get_returns_the_same(stack, tag):
    from scim2_models import Context, Group

    u1, u2 = new_users(stack, tag, 2)
    external_id = f"ext-{tag}"
    resp = stack.call("POST", "/Groups", group_body(f"Create {tag}", members=[u2, u1],
                                                    external_id=external_id))
    created = ok(resp, 201)
    assert_group(stack, created, name=f"Create {tag}", members=[u1, u2], external_id=external_id)
    Group.model_validate(created, scim_ctx=Context.RESOURCE_CREATION_RESPONSE)
    assert resp.headers["location"] == created["meta"]["location"]
    assert resp.headers["etag"] == created["meta"]["version"]

    resp = stack.call("GET", f"/Groups/{created['id']}")
    assert ok(resp) == created
    assert resp.headers["etag"] == created["meta"]["version"]
    assert groups_of_user(stack, u1) == [created["id"]]


def test_create_without_display_name_is_400_invalid_value(stack, tag):
    assert_scim_error(stack.call("POST", "/Groups", {"schemas": [GROUP_SCHEMA],
                                                     "externalId": f"ext-{tag}"}),
                      400, "invalidValue")
    # Nothing was made: the externalId is still free.
    assert find_groups(stack, f'externalId eq "ext-{tag}"')["totalResults"] == 0


def test_display_name_is_unique_whatever_its_case(stack, tag):
    gid = new_group(stack, f"eng{tag}")["id"]
    for other in (f"eng{tag}", f"ENG{tag.upper()}"):
        assert_scim_error(stack.call("POST", "/Groups", group_body(other)), 409, "uniqueness")
    assert ids_of(find_groups(stack, f'displayName eq "eng{tag}"')) == [gid]


def test_external_id_is_unique(stack, tag):
    external_id = str(uuid.uuid4())
    gid = new_group(stack, f"Ext A {tag}", external_id=external_id)["id"]
    assert_scim_error(stack.call("POST", "/Groups", group_body(f"Ext B {tag}",
                                                               external_id=external_id)),
                      409, "uniqueness")
    assert find_groups(stack, f'displayName eq "Ext B {tag}"')["totalResults"] == 0
    assert ids_of(find_groups(stack, f'externalId eq "{external_id}"')) == [gid]


def test_create_with_unknown_members_is_400_and_creates_nothing(stack, tag):
    (u1,) = new_users(stack, tag, 1)
    name = f"Unknown Members {tag}"
    body = assert_scim_error(stack.call("POST", "/Groups", group_body(
        name, members=[u1, NO_SUCH_ID, "not-a-user"])), 400, "invalidValue")
    assert NO_SUCH_ID in body["detail"] and "not-a-user" in body["detail"], body
    assert find_groups(stack, f'displayName eq "{name}"')["totalResults"] == 0
    assert groups_of_user(stack, u1) == []
    # The name stayed free: the retry without the bad ids succeeds.
    assert member_ids(new_group(stack, name, members=[u1])) == [u1]


# --- read -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", [NO_SUCH_ID, "not-a-number"])
def test_unknown_group_is_404(stack, bad_id):
    body = assert_scim_error(stack.call("GET", f"/Groups/{bad_id}"), 404)
    assert "scimType" not in body, body
    assert_scim_error(stack.call("PUT", f"/Groups/{bad_id}", group_body("x")), 404)
    assert_scim_error(patch(stack, bad_id, {"op": "replace", "path": "displayName",
                                            "value": "x"}), 404)
    assert_scim_error(stack.call("DELETE", f"/Groups/{bad_id}"), 404)


def test_projections_drop_members_or_keep_only_display_name(stack, tag):
    u1, u2 = new_users(stack, tag, 2)
    name = f"Projected {tag}"
    gid = new_group(stack, name, members=[u1, u2], external_id=f"ext-{tag}")["id"]
    flt = f'displayName eq "{name}"'

    one = get_group(stack, gid, excludedAttributes="members")
    assert "members" not in one and one["displayName"] == name and one["externalId"] == f"ext-{tag}"
    listed = find_groups(stack, flt, excludedAttributes="members")["Resources"]
    assert [("members" in g, g["id"], g["displayName"]) for g in listed] == [(False, gid, name)]
    listed = find_groups(stack, flt, attributes="displayName")["Resources"]
    assert listed == [{"schemas": [GROUP_SCHEMA], "id": gid, "displayName": name}]
    # Without a projection the members are there.
    assert member_ids(find_groups(stack, flt)["Resources"][0]) == [u1, u2]


def test_filters_by_display_name_external_id_and_id(stack, tag):
    external_id = str(uuid.uuid4())
    gid = new_group(stack, f"filter{tag}", external_id=external_id)["id"]
    decoy = new_group(stack, f"filter{tag}x", external_id=external_id + "x")["id"]
    for flt in (f'displayName eq "filter{tag}"', f'displayName eq "FILTER{tag.upper()}"',
                f'externalId eq "{external_id}"', f'id eq "{gid}"'):
        listed = find_groups(stack, flt)
        assert (listed["totalResults"], ids_of(listed)) == (1, [gid]), flt
    assert ids_of(find_groups(stack, f'id eq "{decoy}"')) == [decoy]
    for flt in (f'displayName eq "filter{tag}y"', f'id eq "{NO_SUCH_ID}"',
                f'externalId eq "{external_id.upper()}"'):
        listed = find_groups(stack, flt)
        assert listed["totalResults"] == 0 and listed.get("Resources", []) == [], flt


def test_filter_by_member_in_both_forms(stack, tag):
    u1, u2, u3 = new_users(stack, tag, 3)
    g1 = new_group(stack, f"Members A {tag}", members=[u1, u2])["id"]
    g2 = new_group(stack, f"Members B {tag}", members=[u2])["id"]
    for form in ('members[value eq "{uid}"]', 'members.value eq "{uid}"'):
        assert ids_of(find_groups(stack, form.format(uid=u1))) == [g1], form
        both = find_groups(stack, form.format(uid=u2))
        assert (both["totalResults"], ids_of(both)) == (2, [g1, g2]), form
        assert find_groups(stack, form.format(uid=u3))["totalResults"] == 0, form


@pytest.mark.parametrize("flt", [
    'displayName co "grp"',
    'displayName sw "grp"',
    'displayName ne "grp"',
    "displayName pr",
    'displayName eq "a" or displayName eq "b"',
    'not (displayName eq "grp")',
])
def test_the_other_operators_are_400_in_odm_and_filter_in_rfc(stack, flt):
    resp = stack.call("GET", "/Groups" + query(filter=flt))
    if stack.name == "rfc":
        assert resp.status == 200, resp.body
    else:
        assert_scim_error(resp, 400, "invalidFilter")


@pytest.mark.parametrize("flt", [
    'userName eq "grp"',
    'displayName eq "unterminated',
    # Members are compared only with eq on their value, in every profile.
    'members.value ne "1"',
])
def test_unsupported_filters_are_400_invalid_filter(stack, flt):
    assert_scim_error(stack.call("GET", "/Groups" + query(filter=flt)), 400, "invalidFilter")



def test_list_pages_in_id_order(stack, tag):
    from scim2_models import Context, Group, ListResponse

    gids = [new_group(stack, f"Page {tag} {i}")["id"] for i in range(3)]
    full = find_groups(stack, count=1000)
    ListResponse[Group].model_validate(full, scim_ctx=Context.SEARCH_RESPONSE)
    everything = ids_of(full)
    assert everything == in_order(everything)
    assert full["totalResults"] == len(everything)  # fewer than 1000 groups in an e2e run
    # Made one after the other, nothing in between: neighbours in the list.
    at = everything.index(gids[0]) + 1  # startIndex is 1-based
    assert everything[at - 1:at + 2] == gids

    first = find_groups(stack, startIndex=at, count=2)
    assert (first["startIndex"], first["itemsPerPage"], first["totalResults"]) == (
        at, 2, full["totalResults"])
    assert ids_of(first) == gids[:2]
    assert ids_of(find_groups(stack, startIndex=at + 2, count=2))[0] == gids[2]
    past = find_groups(stack, startIndex=full["totalResults"] + 1, count=2)
    assert past["totalResults"] == full["totalResults"] and past.get("Resources", []) == []


def test_search_endpoint_is_a_filtered_list(stack, tag):
    (u1,) = new_users(stack, tag, 1)
    name = f"Searched {tag}"
    gid = new_group(stack, name, members=[u1])["id"]
    body = ok(stack.call("POST", "/Groups/.search", {
        "schemas": [SEARCH_SCHEMA], "filter": f'displayName eq "{name}"',
        "excludedAttributes": ["members"]}))
    assert body["schemas"] == [LIST_SCHEMA]
    assert (body["totalResults"], ids_of(body)) == (1, [gid])
    assert "members" not in body["Resources"][0] and body["Resources"][0]["displayName"] == name
    with_members = ok(stack.call("POST", "/Groups/.search", {
        "schemas": [SEARCH_SCHEMA], "filter": f'members[value eq "{u1}"]'}))
    assert [member_ids(g) for g in with_members["Resources"]] == [[u1]]


# --- PUT ------------------------------------------------------------------------------------


def test_put_replaces_names_and_members_only_when_given(stack, tag):
    u1, u2, u3 = new_users(stack, tag, 3)
    gid = new_group(stack, f"Put {tag}", members=[u1, u2], external_id=f"put-{tag}")["id"]

    resp = stack.call("PUT", f"/Groups/{gid}", {**group_body(
        f"Put {tag} b", members=[u3], external_id=f"put-{tag}-b"), "id": gid})
    put = ok(resp)
    assert_group(stack, put, name=f"Put {tag} b", members=[u3], external_id=f"put-{tag}-b")
    assert resp.headers["etag"] == put["meta"]["version"]
    assert groups_of_user(stack, u1) == [] and groups_of_user(stack, u3) == [gid]

    # No `members`: the members stay.
    put = ok(stack.call("PUT", f"/Groups/{gid}", group_body(f"Put {tag} c",
                                                            external_id=f"put-{tag}-c")))
    assert (put["displayName"], put["externalId"], member_ids(put)) == (
        f"Put {tag} c", f"put-{tag}-c", [u3])
    assert get_group(stack, gid) == put
    assert find_groups(stack, f'displayName eq "Put {tag}"')["totalResults"] == 0


# --- PATCH ----------------------------------------------------------------------------------


def test_patch_add_several_and_again_is_a_no_op(stack, tag):
    u1, u2, u3 = new_users(stack, tag, 3)
    gid = new_group(stack, f"Add {tag}")["id"]
    no_content(patch(stack, gid, add(u2, u1)))
    assert members_now(stack, gid) == [u1, u2]
    no_content(patch(stack, gid, add(u2, u3)))  # u2 is a member already
    assert members_now(stack, gid) == [u1, u2, u3]
    assert groups_of_user(stack, u2) == [gid]


def test_patch_remove_forms(stack, tag):
    u1, u2, u3, u4 = new_users(stack, tag, 4)
    gid = new_group(stack, f"Remove {tag}", members=[u1, u2, u3, u4])["id"]

    no_content(patch(stack, gid, {"op": "remove", "path": f'members[value eq "{u1}"]'}))
    assert members_now(stack, gid) == [u2, u3, u4]
    no_content(patch(stack, gid, {"op": "remove", "path": "members", "value": [{"value": u2}]}))
    assert members_now(stack, gid) == [u3, u4]
    # Removing who is not a member (any more) changes nothing and is no error.
    no_content(patch(stack, gid, {"op": "remove", "path": f'members[value eq "{u1}"]'}))
    no_content(patch(stack, gid, {"op": "remove", "path": "members", "value": [{"value": u2}]}))
    assert members_now(stack, gid) == [u3, u4]
    # No value: everyone.
    no_content(patch(stack, gid, {"op": "remove", "path": "members"}))
    assert members_now(stack, gid) == []
    assert [groups_of_user(stack, u) for u in (u1, u2, u3, u4)] == [[], [], [], []]


def test_patch_replace_members_sets_exactly_that_list(stack, tag):
    u1, u2, u3 = new_users(stack, tag, 3)
    gid = new_group(stack, f"Replace {tag}", members=[u1, u2])["id"]
    no_content(patch(stack, gid, {"op": "replace", "path": "members",
                                  "value": [{"value": u3}, {"value": u2}]}))
    assert members_now(stack, gid) == [u2, u3]
    assert groups_of_user(stack, u1) == []
    no_content(patch(stack, gid, {"op": "replace", "path": "members", "value": []}))
    assert members_now(stack, gid) == []


def test_patch_operations_apply_in_order(stack, tag):
    u1, u2, u3 = new_users(stack, tag, 3)
    gid = new_group(stack, f"Order {tag}", members=[u1])["id"]
    # Out of order, u2 would stay (remove before add) and u1 would go (replace after add).
    no_content(patch(stack, gid,
                     add(u2),
                     {"op": "remove", "path": f'members[value eq "{u2}"]'},
                     {"op": "replace", "path": "members", "value": [{"value": u3}]},
                     add(u1),
                     {"op": "replace", "path": "displayName", "value": f"Order {tag} done"}))
    final = get_group(stack, gid)
    assert (final["displayName"], member_ids(final)) == (f"Order {tag} done", [u1, u3])


def test_patch_with_unknown_users_applies_nothing(stack, tag):
    u1, u2 = new_users(stack, tag, 2)
    name = f"Atomic {tag}"
    gid = new_group(stack, name, members=[u1])["id"]
    before = get_group(stack, gid)

    body = assert_scim_error(patch(
        stack, gid, {"op": "replace", "path": "displayName", "value": f"{name} renamed"},
        add(u2, NO_SUCH_ID, "not-a-user")), 400, "invalidValue")
    assert NO_SUCH_ID in body["detail"] and "not-a-user" in body["detail"], body
    body = assert_scim_error(patch(
        stack, gid, {"op": "remove", "path": "members"},
        {"op": "replace", "path": "members", "value": [{"value": u2}, {"value": NO_SUCH_ID}]}),
        400, "invalidValue")
    assert NO_SUCH_ID in body["detail"], body

    assert get_group(stack, gid) == before
    assert find_groups(stack, f'displayName eq "{name} renamed"')["totalResults"] == 0
    assert groups_of_user(stack, u1) == [gid] and groups_of_user(stack, u2) == []


def test_patch_rename_to_a_taken_name_is_409(stack, tag):
    new_group(stack, f"taken{tag}")
    gid = new_group(stack, f"other{tag}")["id"]
    assert_scim_error(patch(stack, gid, {"op": "replace", "path": "displayName",
                                         "value": f"TAKEN{tag.upper()}"}), 409, "uniqueness")
    assert_scim_error(patch(stack, gid, {"op": "replace", "value": {
        "id": gid, "displayName": f"taken{tag}"}}), 409, "uniqueness")
    assert get_group(stack, gid)["displayName"] == f"other{tag}"


def test_patch_answers_204_or_200_when_a_projection_is_asked(stack, tag):
    (u1,) = new_users(stack, tag, 1)
    resp = stack.call("POST", "/Groups", group_body(f"Answer {tag}", members=[u1]))
    gid, etag = ok(resp, 201)["id"], resp.headers["etag"]

    renamed = no_content(patch(stack, gid, {"op": "replace", "path": "displayName",
                                            "value": f"Answer {tag} 2"}))
    assert renamed != etag
    assert get_group(stack, gid)["meta"]["version"] == renamed

    body = ok(patch(stack, gid, {"op": "replace", "path": "displayName", "value": f"Answer {tag} 3"},
                    excludedAttributes="members"))
    assert "members" not in body and (body["id"], body["displayName"]) == (gid, f"Answer {tag} 3")
    body = ok(patch(stack, gid, {"op": "replace", "path": "displayName", "value": f"Answer {tag} 4"},
                    attributes="displayName"))
    assert body == {"schemas": [GROUP_SCHEMA], "id": gid, "displayName": f"Answer {tag} 4"}
    assert_group(stack, get_group(stack, gid), name=f"Answer {tag} 4", members=[u1])


# --- DELETE and the users' side -------------------------------------------------------------


def test_delete_frees_the_name_and_leaves_the_members(stack, tag):
    u1, u2 = new_users(stack, tag, 2)
    name = f"Deleted {tag}"
    gid = new_group(stack, name, members=[u1, u2])["id"]
    assert groups_of_user(stack, u1) == [gid]

    resp = stack.call("DELETE", f"/Groups/{gid}")
    assert (resp.status, resp.body) == (204, None)
    assert_scim_error(stack.call("GET", f"/Groups/{gid}"), 404)
    assert_scim_error(stack.call("DELETE", f"/Groups/{gid}"), 404)
    assert_scim_error(patch(stack, gid, add(u1)), 404)
    assert find_groups(stack, f'displayName eq "{name}"')["totalResults"] == 0
    assert gid not in ids_of(find_groups(stack, f'members[value eq "{u1}"]'))
    assert groups_of_user(stack, u1) == [] and groups_of_user(stack, u2) == []

    again = new_group(stack, name, members=[u2])
    assert again["id"] != gid and member_ids(again) == [u2]


def test_user_resource_lists_its_groups(stack, tag):
    u1, u2 = new_users(stack, tag, 2)
    g1 = new_group(stack, f"Mine A {tag}", members=[u1])["id"]
    g2 = new_group(stack, f"Mine B {tag}", members=[u1, u2])["id"]
    user = ok(stack.call("GET", f"/Users/{u1}"))
    groups = [{k: g.get(k) for k in ("value", "$ref", "type")} for g in user["groups"]]
    assert sorted(groups, key=lambda g: int(g["value"])) == [
        {"value": gid, "$ref": stack.ref("Groups", gid), "type": "direct"} for gid in (g1, g2)]
    assert groups_of_user(stack, u2) == [g2]


def test_deleting_a_user_removes_them_from_their_groups(tag):
    """rfc profile: DELETE /Users deletes (odm only deactivates)."""
    if not RFC.base_url:
        pytest.skip("the rfc stack is not running: run `make e2e`")
    u1, u2 = new_users(RFC, tag, 2)
    gid = new_group(RFC, f"Leavers {tag}", members=[u1, u2])["id"]
    resp = RFC.call("DELETE", f"/Users/{u1}")
    assert resp.status == 204, resp.body
    assert members_now(RFC, gid) == [u2]
    assert find_groups(RFC, f'members[value eq "{u1}"]')["totalResults"] == 0


# --- discovery ------------------------------------------------------------------------------


def test_discovery_describes_groups(stack):
    types = ok(stack.call("GET", "/ResourceTypes"))
    group_type = [t for t in types["Resources"] if t["name"] == "Group"]
    assert len(group_type) == 1, types
    assert (group_type[0]["endpoint"], group_type[0]["schema"]) == ("/Groups", GROUP_SCHEMA)
    assert "User" in [t["name"] for t in types["Resources"]]
    one = ok(stack.call("GET", "/ResourceTypes/Group"))
    assert (one["name"], one["endpoint"], one["schema"]) == ("Group", "/Groups", GROUP_SCHEMA)

    schemas = ok(stack.call("GET", "/Schemas"))
    listed = [s for s in schemas["Resources"] if s["id"] == GROUP_SCHEMA]
    assert len(listed) == 1, [s["id"] for s in schemas["Resources"]]
    schema = ok(stack.call("GET", f"/Schemas/{GROUP_SCHEMA}"))
    assert schema["id"] == GROUP_SCHEMA
    for described in (listed[0], schema):
        attrs = {a["name"]: a for a in described["attributes"]}
        assert attrs["displayName"]["required"] is True
        members = attrs["members"]
        assert (members["type"], members["multiValued"]) == ("complex", True)
        assert {"value", "$ref", "type"} <= {a["name"] for a in members["subAttributes"]}


# --- concurrency ----------------------------------------------------------------------------
# Member changes touch only the member's items (shared/src/store/groups.rs), so parallel adds
# to one group must all land; scripts/e2e.sh runs up to E2E_WATCH_CONCURRENCY instances per
# function.


def test_concurrent_member_adds_all_land(stack, tag):
    n = 24
    uids = new_users(stack, tag, n)
    gid = new_group(stack, f"Crowd {tag}", members=[])["id"]
    results = race(n, lambda i: patch(stack, gid, add(uids[i])))
    assert [r.status for r in results] == [204] * n, [(r.status, r.body) for r in results]
    assert members_now(stack, gid) == uids


# --- groups are orgs ------------------------------------------------------------------------


def test_usersctl_org_is_a_group_with_its_members(tag):
    """`usersctl org create --slug --name` makes a group of that name; `org add-member` adds
    to its members; a member added through SCIM is one of the org's users."""
    slug, name = f"o{tag}", f"Org {tag} Ltd"
    gid = last_line(usersctl("org", "create", "--slug", slug, "--name", name))
    assert gid.isdigit()
    group = get_group(MAIN, gid)
    assert_group(MAIN, group, name=name, members=[])
    assert ids_of(find_groups(MAIN, f'displayName eq "{name}"')) == [gid]

    people = [create_user(f"e2e{tag}_org{i}") for i in range(2)]
    for person in people:
        usersctl("org", "add-member", "--slug", slug, "--username", person.username)
    assert members_now(MAIN, gid) == [str(p.id) for p in people]
    assert groups_of_user(MAIN, str(people[0].id)) == [gid]

    third = create_user(f"e2e{tag}_org2")
    no_content(patch(MAIN, gid, add(str(third.id))))
    listed = org_member_ids(MAIN, slug)
    assert listed.status == 200, listed.body
    assert [u["id"] for u in listed.body["results"]] == [p.id for p in (*people, third)]

    # Without --name the group is named by the slug.
    plain = f"p{tag}"
    plain_id = last_line(usersctl("org", "create", "--slug", plain))
    assert get_group(MAIN, plain_id)["displayName"] == plain


def test_scim_members_are_the_orgs_users(stack, tag):
    u1, u2 = new_users(stack, tag, 2)
    name = f"grp{tag}"  # its slug is its name
    assert slug_of(name) == name and slug_of("E2E Okta Eng 1a2b") == "e2e-okta-eng-1a2"
    gid = new_group(stack, name, members=[u1, u2])["id"]

    for path in (f"/api/users?org={name}&sort=id&page_size=all",
                 f"/api/users?org_id={gid}&sort=id&page_size=all"):
        listed = stack.admin_api(path)
        assert listed.status == 200, listed.body
        assert [u["id"] for u in listed.body["results"]] == [int(u1), int(u2)], path

    no_content(patch(stack, gid, {"op": "remove", "path": f'members[value eq "{u1}"]'}))
    assert [u["id"] for u in org_member_ids(stack, name).body["results"]] == [int(u2)]
    # A rename keeps the slug: org scoping goes on working.
    no_content(patch(stack, gid, {"op": "replace", "path": "displayName", "value": f"Renamed {tag}"}))
    assert [u["id"] for u in org_member_ids(stack, name).body["results"]] == [int(u2)]

    assert stack.call("DELETE", f"/Groups/{gid}").status == 204
    assert org_member_ids(stack, name).status == 404


def test_scim_member_can_use_x_organization(tag):
    """A user made a member through SCIM works in the org (`X-Organization: <slug>`) and
    stops when removed."""
    person = create_user(f"e2e{tag}_xorg", token=True)
    fellow = create_user(f"e2e{tag}_fellow")
    name = f"grp{tag}"
    gid = new_group(MAIN, name, members=[str(fellow.id)])["id"]
    in_org = {"X-Organization": name}

    # Not a member: answered as if the org did not exist, so that org contexts
    # cannot probe which orgs exist.
    not_in = {"status": 404, "body": {"detail": f"{name} organization does not exist."}}
    denied = MAIN.admin_api("/api/users?sort=id", token=person.token, headers=in_org)
    assert {"status": denied.status, "body": denied.body} == not_in
    missing = MAIN.admin_api("/api/users?sort=id", token=person.token,
                             headers={"X-Organization": f"{name}x"})
    assert missing.status == 404, missing.body

    no_content(patch(MAIN, gid, add(str(person.id))))
    seen = MAIN.admin_api("/api/users?sort=id", token=person.token, headers=in_org)
    assert seen.status == 200, seen.body
    assert [u["id"] for u in seen.body["results"]] == sorted([person.id, fellow.id])
    one = MAIN.admin_api(f"/api/users/{fellow.id}", token=person.token, headers=in_org)
    assert (one.status, one.body.get("username")) == (200, fellow.username), one.body

    no_content(patch(MAIN, gid, {"op": "remove", "path": "members",
                                 "value": [{"value": str(person.id)}]}))
    again = MAIN.admin_api("/api/users?sort=id", token=person.token, headers=in_org)
    assert {"status": again.status, "body": again.body} == not_in
