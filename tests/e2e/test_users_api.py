"""The admin users API (/api/users), end to end through the real cvat_sdk client."""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs, urlsplit

import pytest
from cvat_sdk.api_client import exceptions, models

from helpers import BASE_URL, client, create_user, raw, usersctl

ADMIN_USERNAME = os.environ.get("E2E_ADMIN_USERNAME", "")
ADMIN_PASSWORD = os.environ.get("E2E_ADMIN_PASSWORD", "")
NO_PERMISSION = {"detail": "You do not have permission to perform this action."}


def error_of(excinfo) -> object:
    return json.loads(excinfo.value.body)


def names(page) -> list[str]:
    return [user.username for user in page.results]


def select(people, pred) -> list[str]:
    return [p.username for p in people if pred(p)]


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# --- authentication and self -------------------------------------------------------------


def test_retrieve_self_with_token(admin_api):
    data, resp = admin_api.retrieve_self()
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/vnd.cvat+json")
    assert data.username == ADMIN_USERNAME
    assert "admin" in data.groups
    assert data.is_active is True
    assert data.url.endswith(f"/api/users/{data.id}")
    assert data.email == "e2e-admin@example.com"


def test_retrieve_self_with_basic_auth(admin_api):
    admin = admin_api.retrieve_self()[0]
    with client(username=ADMIN_USERNAME, password=ADMIN_PASSWORD) as api_client:
        data, resp = api_client.users_api.retrieve_self()
    assert resp.status == 200
    assert (data.id, data.username) == (admin.id, ADMIN_USERNAME)


def test_missing_credentials_get_401():
    resp = raw("GET", "/api/users/self")
    assert resp.status == 401
    assert "www-authenticate" in resp.headers
    assert isinstance(resp.body, dict) and "detail" in resp.body


def test_unknown_token_gets_401():
    with client(token="1.not-a-real-token") as api_client:
        with pytest.raises(exceptions.UnauthorizedException) as err:
            api_client.users_api.retrieve_self()
    assert "detail" in error_of(err)


# --- list: paging, search, sort, filters -------------------------------------------------


def test_list_pages_follow_next_links(admin_api, admin_token, people, run_id):
    term = f"{run_id}_u"
    page, resp = admin_api.list(search=term, sort="username", page_size=5)
    assert resp.status == 200
    assert page.count == 12
    assert page.previous is None
    assert names(page) == sorted(p.username for p in people)[:5]

    seen, url, pages = names(page), page.next, 1
    while url:
        parts = urlsplit(url)
        assert parts.netloc == urlsplit(BASE_URL).netloc, url
        assert parts.path == "/api/users"
        query = query_of(url)
        assert query["page"] == [str(pages + 1)]
        assert query["page_size"] == ["5"] and query["sort"] == ["username"]
        assert query["search"] == [term]
        nxt = raw("GET", f"{parts.path}?{parts.query}", token=admin_token)
        assert nxt.status == 200, nxt.body
        assert nxt.body["count"] == 12
        pages += 1
        if pages == 2:
            assert "page" not in query_of(nxt.body["previous"])  # previous of page 2 drops page
        seen += [user["username"] for user in nxt.body["results"]]
        url = nxt.body["next"]

    assert pages == 3
    assert seen == sorted(p.username for p in people)


def test_list_last_and_invalid_pages(admin_api, admin_token, people, run_id):
    last = raw("GET", f"/api/users?search={run_id}_u&sort=id&page_size=5&page=last",
               token=admin_token)
    assert last.status == 200
    assert [u["id"] for u in last.body["results"]] == [p.id for p in people[10:]]
    assert last.body["next"] is None

    with pytest.raises(exceptions.NotFoundException) as err:
        admin_api.list(search=f"{run_id}_u", page_size=5, page=4)
    assert error_of(err) == {"detail": "Invalid page."}


def test_list_search(admin_api, people, run_id):
    page = admin_api.list(search=f"{run_id}_u ann", sort="username")[0]
    assert names(page) == select(people, lambda p: p.first_name == "Ann")

    page = admin_api.list(search=f"{run_id}_u,SMITH", sort="username")[0]
    assert names(page) == select(people, lambda p: p.last_name == "Smith")

    page = admin_api.list(search=f"{run_id}_u nobody-matches-this")[0]
    assert (page.count, page.results, page.next) == (0, [], None)


def test_list_sort(admin_api, people, run_id):
    term = f"{run_id}_u"
    page = admin_api.list(search=term, sort="-username", page_size=20)[0]
    assert names(page) == sorted((p.username for p in people), reverse=True)

    page = admin_api.list(search=term, page_size=20)[0]  # default: -id
    assert [u.id for u in page.results] == sorted((p.id for p in people), reverse=True)

    page = admin_api.list(search=term, sort="first_name,-id", page_size=20)[0]
    expected = sorted(people, key=lambda p: (p.first_name, -p.id))
    assert names(page) == [p.username for p in expected]


def test_list_json_logic_filter(admin_api, people, run_id):
    ids = [p.id for p in people]
    between = {"and": [
        {"in": [f"{run_id}_u", {"var": "username"}]},
        {"<=": [ids[3], {"var": "id"}, ids[6]]},
    ]}
    page = admin_api.list(filter=json.dumps(between), sort="id")[0]
    assert [u.id for u in page.results] == ids[3:7]

    combined = {"and": [
        {"in": [f"{run_id}_u", {"var": "username"}]},
        {"==": [{"var": "first_name"}, "Bob"]},
        {"in": [{"var": "last_name"}, ["Jones"]]},
    ]}
    page = admin_api.list(filter=json.dumps(combined), sort="username")[0]
    assert names(page) == [f"{run_id}_u01", f"{run_id}_u07"]


def test_list_simple_filters(admin_api, people, run_id):
    target = people[2]
    page = admin_api.list(username=target.username)[0]
    assert page.count == 1
    assert [u.id for u in page.results] == [target.id]

    page = admin_api.list(search=f"{run_id}_u", first_name="Cid", sort="username")[0]
    assert names(page) == select(people, lambda p: p.first_name == "Cid")


def test_list_pinned_by_unique_fields(admin_api, people, run_id):
    """Lists pinned by username, id or an id range read only those users; the answers
    are those of the full filter all the same."""
    target = people[4]
    by_name = {"==": [{"var": "username"}, target.username]}
    page = admin_api.list(filter=json.dumps(by_name))[0]
    assert [u.id for u in page.results] == [target.id]
    # the claim is case-insensitive, the filter is not
    by_other_case = {"==": [{"var": "username"}, target.username.upper()]}
    assert admin_api.list(filter=json.dumps(by_other_case))[0].count == 0

    ids = [people[1].id, people[5].id, 987654321]
    page = admin_api.list(filter=json.dumps({"in": [{"var": "id"}, ids]}), sort="id")[0]
    assert [u.id for u in page.results] == ids[:2]

    either = {"or": [{"==": [{"var": "id"}, people[0].id]}, by_name]}
    page = admin_api.list(filter=json.dumps(either), sort="-id")[0]
    assert [u.id for u in page.results] == [target.id, people[0].id]

    pinned_and_more = {"and": [by_name, {"==": [{"var": "first_name"}, "Nobody"]}]}
    assert admin_api.list(filter=json.dumps(pinned_and_more))[0].count == 0

    span = {"and": [{">": [{"var": "id"}, people[2].id]}, {"<": [{"var": "id"}, people[6].id]}]}
    page = admin_api.list(filter=json.dumps(span), search=f"{run_id}_u", sort="id")[0]
    assert [u.id for u in page.results] == [p.id for p in people[3:6]]


def test_org_lists_read_the_members(admin_token, run_id):
    slug = f"{run_id}team"
    usersctl("org", "create", "--slug", slug)
    lead = create_user(f"{run_id}_lead", token=True)
    mates = [create_user(f"{run_id}_mate{i}") for i in range(3)]
    create_user(f"{run_id}_stranger")
    for person in (lead, *mates):
        usersctl("org", "add-member", "--slug", slug, "--username", person.username)
    want = sorted(p.username for p in (lead, *mates))
    for token in (admin_token, lead.token):
        resp = raw("GET", f"/api/users?org={slug}&sort=username&page_size=all", token=token)
        assert resp.status == 200, resp.body
        assert [u["username"] for u in resp.body["results"]] == want
        pinned = raw("GET", f"/api/users?org={slug}&username={mates[1].username}", token=token)
        assert [u["id"] for u in pinned.body["results"]] == [mates[1].id]


@pytest.mark.parametrize("bad_filter, message", [
    ("notjson", None),
    ("{}", "filter shouldn't be empty"),
    ('{"and": []}', None),
    ('{"==": [{"var": "email"}, "x"]}', "filter: term 'email' is not supported"),
    ('{"!=": [{"var": "username"}, "x"]}', None),
])
def test_list_malformed_filter_is_400_with_json_array(admin_api, bad_filter, message):
    with pytest.raises(exceptions.ApiException) as err:
        admin_api.list(filter=bad_filter)
    assert err.value.status == 400
    body = error_of(err)
    assert isinstance(body, list) and body and all(isinstance(m, str) for m in body), body
    if message:
        assert body == [message]


# --- retrieve -----------------------------------------------------------------------------


def test_retrieve_user(admin_api, people):
    target = people[0]
    data, resp = admin_api.retrieve(target.id)
    assert resp.status == 200
    assert (data.id, data.username, data.first_name, data.last_name) == (
        target.id, target.username, target.first_name, target.last_name)
    assert data.url.endswith(f"/api/users/{target.id}")


def test_retrieve_unknown_user_is_404(admin_api):
    with pytest.raises(exceptions.NotFoundException) as err:
        admin_api.retrieve(987654321)
    assert error_of(err) == {"detail": "Not found."}


def test_retrieve_non_integer_id_is_404(admin_token):
    resp = raw("GET", "/api/users/abc", token=admin_token)
    assert (resp.status, resp.body) == (404, {"detail": "Not found."})


# --- partial_update -----------------------------------------------------------------------


def test_admin_partial_update(admin_api, run_id):
    target = create_user(f"{run_id}_patch", first_name="Old", last_name="Name")
    data, resp = admin_api.partial_update(
        target.id,
        patched_user_request=models.PatchedUserRequest(
            first_name="New", last_name="Person", email=f"{run_id}.patched@example.com"),
    )
    assert resp.status == 200
    assert (data.id, data.first_name, data.last_name) == (target.id, "New", "Person")

    again = admin_api.retrieve(target.id)[0]
    assert (again.first_name, again.last_name) == ("New", "Person")
    page = admin_api.list(username=target.username)[0]
    assert [u.first_name for u in page.results] == ["New"]


def test_partial_update_duplicate_username_is_400(admin_api, people):
    with pytest.raises(exceptions.ApiException) as err:
        admin_api.partial_update(
            people[1].id,
            patched_user_request=models.PatchedUserRequest(username=people[0].username.upper()),
        )
    assert err.value.status == 400
    assert error_of(err) == {"username": ["A user with that username already exists."]}
    assert admin_api.retrieve(people[1].id)[0].username == people[1].username


def test_partial_update_unknown_field_is_403(admin_token, people):
    resp = raw("PATCH", f"/api/users/{people[0].id}", token=admin_token,
               body={"password": "hunter2hunter2"})
    assert (resp.status, resp.body) == (403, {"detail": "Attempted to update an unknown field"})


# --- destroy ------------------------------------------------------------------------------


def test_destroy_user(admin_api, run_id):
    victim = create_user(f"{run_id}_gone", token=True)
    _, resp = admin_api.destroy(victim.id)
    assert resp.status == 204

    with pytest.raises(exceptions.NotFoundException):
        admin_api.retrieve(victim.id)
    assert admin_api.list(username=victim.username)[0].count == 0
    with client(token=victim.token) as api_client:  # its tokens went with it
        with pytest.raises(exceptions.UnauthorizedException):
            api_client.users_api.retrieve_self()
    with pytest.raises(exceptions.NotFoundException):
        admin_api.destroy(victim.id)


# --- a regular user -----------------------------------------------------------------------


def test_member_lists_only_themselves(member_api, member, people):
    page = member_api.list()[0]
    assert page.count == 1
    assert [u.id for u in page.results] == [member.id]


def test_member_retrieve_self(member_api, member):
    data = member_api.retrieve_self()[0]
    assert (data.id, data.username, data.email) == (member.id, member.username, member.email)
    assert "admin" not in data.groups


def test_member_can_rename_themselves(member_api, member):
    data = member_api.partial_update(
        member.id, patched_user_request=models.PatchedUserRequest(last_name="Renamed"))[0]
    assert (data.id, data.last_name) == (member.id, "Renamed")


def test_member_cannot_rename_another_user(member_api, admin_api, people):
    with pytest.raises(exceptions.ForbiddenException):
        member_api.partial_update(
            people[3].id, patched_user_request=models.PatchedUserRequest(first_name="Hacked"))
    assert admin_api.retrieve(people[3].id)[0].first_name == people[3].first_name


def test_member_cannot_change_own_email(member_api, member):
    with pytest.raises(exceptions.ForbiddenException):
        member_api.partial_update(
            member.id,
            patched_user_request=models.PatchedUserRequest(email="elsewhere@example.com"))
    assert member_api.retrieve_self()[0].email == member.email


def test_member_cannot_view_or_delete_another_user(member_api, admin_api, run_id):
    other = create_user(f"{run_id}_other")
    with pytest.raises(exceptions.ForbiddenException):
        member_api.retrieve(other.id)
    with pytest.raises(exceptions.ForbiddenException):
        member_api.destroy(other.id)
    assert admin_api.retrieve(other.id)[0].username == other.username


def test_member_gets_403_for_an_unknown_id(member_api):
    # Only an admin learns that an id is free: to anyone else it is one more user they may
    # not see.
    with pytest.raises(exceptions.ForbiddenException) as err:
        member_api.retrieve(987654321)
    assert error_of(err) == NO_PERMISSION


def test_org_member_cannot_read_outsiders_through_the_org(run_id):
    """Replay of the `?org=` leak: a member of an org named it to read any user's record.
    Before issue 8 that answered 200 with the outsider's record; now it is the 403 an id
    nobody has gets."""
    slug = f"{run_id}org"
    usersctl("org", "create", "--slug", slug)
    insider = create_user(f"{run_id}_insider", token=True)
    fellow = create_user(f"{run_id}_fellow", first_name="Fel")
    outsider = create_user(f"{run_id}_outsider", first_name="Out")
    for person in (insider, fellow):
        usersctl("org", "add-member", "--slug", slug, "--username", person.username)

    seen = raw("GET", f"/api/users/{fellow.id}?org={slug}", token=insider.token)
    assert seen.status == 200, seen.body
    assert seen.body["username"] == fellow.username and "email" not in seen.body

    missing = raw("GET", f"/api/users/987654321?org={slug}", token=insider.token)
    assert (missing.status, missing.body) == (403, NO_PERMISSION)
    by_param = raw("GET", f"/api/users/{outsider.id}?org={slug}", token=insider.token)
    by_header = raw("GET", f"/api/users/{outsider.id}", token=insider.token,
                    headers={"X-Organization": slug})
    for leak in (by_param, by_header):
        assert (leak.status, leak.body) == (missing.status, missing.body)


def test_oversized_org_slug_is_400_not_500(admin_token):
    resp = raw("GET", "/api/users?org=" + "o" * 3000, token=admin_token)
    assert resp.status == 400, resp.body
    assert resp.body == ["org: Ensure this value has no more than 1024 bytes."]


# --- routing ------------------------------------------------------------------------------


def test_other_method_is_405(admin_token, people):
    resp = raw("PUT", f"/api/users/{people[0].id}", token=admin_token, body={})
    assert (resp.status, resp.body) == (405, {"detail": 'Method "PUT" not allowed.'})


def test_unknown_route_is_404_json(admin_token):
    resp = raw("GET", "/api/no-such-thing", token=admin_token)
    assert resp.status == 404
    assert isinstance(resp.body, dict) and "detail" in resp.body
