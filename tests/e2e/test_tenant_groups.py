"""Tenant Groups through `cargo lambda watch`: two customers provision at once under their own
SCIM bases, one with Okta's group push sequence and one with Entra ID's group assignment, their
group names mapped to org roles with `usersctl org map-group`; then the admin API, read through
cvat-sdk's memberships_api, shows each member's role."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import BASE_URL, client, last_line, usersctl
from scim_helpers import USER_SCHEMA, patch_op, scim

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def tenant(slug: str, domain: str) -> str:
    """An org with a verified domain and its SCIM token."""
    usersctl("org", "create", "--slug", slug, "--name", f"Customer {slug}")
    usersctl("org", "domain", "add", "--slug", slug, "--domain", domain)
    return last_line(usersctl("org", "scim-token", "--slug", slug))


def call(slug: str, token: str, method: str, path: str, body: object = None):
    return scim(method, BASE_URL, f"/orgs/{slug}{path}", token=token, body=body)


def user(slug: str, token: str, name: str) -> str:
    r = call(slug, token, "POST", "/Users",
             {"schemas": [USER_SCHEMA], "userName": name, "active": True,
              "name": {"givenName": "G", "familyName": "F"},
              "emails": [{"value": name, "primary": True, "type": "work"}]})
    assert r.status == 201, r.body
    return r.body["id"]


def okta(slug: str, token: str, domain: str) -> dict:
    """Okta's push: users first, the group created empty, then PATCHes adding and removing
    members (`members[value eq "…"]` for a removal)."""
    ann, ben = (user(slug, token, f"{n}@{domain}") for n in ("ann", "ben"))
    r = call(slug, token, "POST", "/Groups",
             {"schemas": [GROUP_SCHEMA], "displayName": "Okta Admins", "members": []})
    assert r.status == 201, r.body
    gid = r.body["id"]
    r = call(slug, token, "PATCH", f"/Groups/{gid}", patch_op(
        {"op": "add", "path": "members", "value": [{"value": ann}, {"value": ben}]}))
    assert r.status == 204, r.body
    r = call(slug, token, "PATCH", f"/Groups/{gid}", patch_op(
        {"op": "remove", "path": f'members[value eq "{ben}"]'}))
    assert r.status == 204, r.body
    return {"ann": ann, "ben": ben, "group": gid}


def entra(slug: str, token: str, domain: str) -> dict:
    """Entra's assignment: the group POSTed bare, members added with a `members` add (its
    capitalised op names), one removed with a `members[value eq "…"]` remove."""
    cay, dan = (user(slug, token, f"{n}@{domain}") for n in ("cay", "dan"))
    r = call(slug, token, "POST", "/Groups",
             {"schemas": [GROUP_SCHEMA], "displayName": "Entra Leads", "externalId": "e-1"})
    assert r.status == 201, r.body
    gid = r.body["id"]
    r = call(slug, token, "PATCH", f"/Groups/{gid}", patch_op(
        {"op": "Add", "path": "members", "value": [{"value": cay}]}))
    assert r.status == 204, r.body
    r = call(slug, token, "PATCH", f"/Groups/{gid}", patch_op(
        {"op": "Add", "path": "members", "value": [{"value": dan}]}))
    assert r.status == 204, r.body
    r = call(slug, token, "PATCH", f"/Groups/{gid}", patch_op(
        {"op": "Remove", "path": f'members[value eq "{dan}"]'}))
    assert r.status == 204, r.body
    return {"cay": cay, "dan": dan, "group": gid}


@pytest.mark.skipif(not BASE_URL, reason="needs the e2e stack")
def test_okta_and_entra_groups_become_roles(admin_token, run_id):
    a, b = f"{run_id}-o", f"{run_id}-e"
    da, db = f"{run_id}-okta.test", f"{run_id}-entra.test"
    ta, tb = tenant(a, da), tenant(b, db)
    # Mappings set before the IdPs push (caseless group names).
    # Nothing provisions yet: no second pass (--settle-seconds 0).
    usersctl("org", "map-group", "--slug", a, "--group", "okta admins", "--role", "maintainer",
             "--settle-seconds", "0")
    usersctl("org", "map-group", "--slug", b, "--group", "Entra Leads", "--role", "supervisor",
             "--settle-seconds", "0")
    roles = usersctl("org", "group-roles", "--slug", b)
    assert "entra leads\tsupervisor" in roles and "default\tworker" in roles, roles
    with ThreadPoolExecutor(2) as pool:
        fa = pool.submit(okta, a, ta, da)
        fb = pool.submit(entra, b, tb, db)
        got_a, got_b = fa.result(), fb.result()

    # Each sees only its own groups; the other's id answers as a missing one.
    la = call(a, ta, "GET", "/Groups")
    lb = call(b, tb, "GET", "/Groups")
    assert [g["id"] for g in la.body["Resources"]] == [got_a["group"]]
    assert [g["id"] for g in lb.body["Resources"]] == [got_b["group"]]
    members = la.body["Resources"][0]["members"]
    assert [m["value"] for m in members] == [got_a["ann"]]
    assert members[0]["$ref"].endswith(f"/api/v1/scim/orgs/{a}/Users/{got_a['ann']}"), members
    assert call(a, ta, "GET", f"/Groups/{got_b['group']}").status == 404
    # A adding B's user to A's group: 400 invalidValue, as an unknown id.
    r = call(a, ta, "PATCH", f"/Groups/{got_a['group']}", patch_op(
        {"op": "add", "path": "members", "value": [{"value": got_b["cay"]}]}))
    assert (r.status, r.body["scimType"]) == (400, "invalidValue"), r.body

    # The admin API (cvat-sdk) shows the roles the groups gave.
    with client(token=admin_token) as api:
        page, _ = api.memberships_api.list(org=a, page_size=100)
        by_user = {m.user.id: m.role for m in page.results}
        assert by_user == {int(got_a["ann"]): "maintainer", int(got_a["ben"]): "worker"}
        page, _ = api.memberships_api.list(org=b, page_size=100)
        by_user = {m.user.id: m.role for m in page.results}
        assert by_user == {int(got_b["cay"]): "supervisor", int(got_b["dan"]): "worker"}

    # A mapping change recomputes the group's members, then once more after the wait (for a
    # member change that read the old mapping), which finds nothing left to move here.
    out = usersctl("org", "map-group", "--slug", a, "--group", "Okta Admins", "--role", "owner",
                   "--settle-seconds", "1")
    assert "1 member(s) changed role" in out and "0 more member(s) changed role" in out, out
    with client(token=admin_token) as api:
        page, _ = api.memberships_api.list(org=a, page_size=100)
        assert {m.user.id: m.role for m in page.results}[int(got_a["ann"])] == "owner"
