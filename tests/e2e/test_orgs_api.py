"""Organizations and memberships (/api/organizations, /api/memberships), end to end through
the real cvat_sdk client: its organizations_api and memberships_api parse every answer with
their type checks on (OrganizationRead, MembershipRead, BasicUser, the paginated lists)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from cvat_sdk.api_client import exceptions, models
from cvat_sdk.core.helpers import get_paginated_collection

from helpers import client, create_user, raw, usersctl


@pytest.fixture(scope="module")
def orgs(run_id):
    """Two orgs: alpha (an owner and a worker), beta (the same worker, as supervisor);
    and an outsider in neither."""
    alpha, beta = f"{run_id}a", f"{run_id}b"
    usersctl("org", "create", "--slug", alpha, "--name", f"{run_id} Alpha")
    usersctl("org", "create", "--slug", beta, "--name", f"{run_id} Beta")
    people = {
        "owner": create_user(f"{run_id}_boss", first_name="Bo", token=True),
        "worker": create_user(f"{run_id}_hand", last_name="Hand", token=True),
        "outsider": create_user(f"{run_id}_away", token=True),
    }
    for slug, who, role in [(alpha, "owner", "owner"), (alpha, "worker", "worker"),
                            (beta, "worker", "supervisor")]:
        usersctl("org", "add-member", "--slug", slug, "--username", people[who].username,
                 "--role", role)
    return alpha, beta, people


def error_of(excinfo) -> object:
    return json.loads(excinfo.value.body)


def test_sdk_lists_and_retrieves_organizations(admin_token, orgs, run_id):
    alpha, beta, people = orgs
    with client(token=admin_token) as api:
        page, resp = api.organizations_api.list(search=run_id, sort="slug")
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/vnd.cvat+json")
        assert page.count == 2 and page.next is None and page.previous is None
        assert [o.slug for o in page.results] == [alpha, beta]
        first = page.results[0]
        assert isinstance(first, models.OrganizationRead)
        assert (first.name, first.description, first.contact, first.owner) == \
            (f"{run_id} Alpha", "", {}, None)
        assert isinstance(first.created_date, datetime)
        got, _ = api.organizations_api.retrieve(first.id)
        assert got.to_dict() == first.to_dict()
        by_slug, _ = api.organizations_api.list(slug=beta)
        assert [o.slug for o in by_slug.results] == [beta]
        ranged = json.dumps({"in": [{"var": "slug"}, [alpha, beta]]})
        filtered, _ = api.organizations_api.list(filter=ranged, page_size=1)
        assert filtered.count == 2 and len(filtered.results) == 1 and filtered.next

    with client(token=people["worker"].token) as api:
        page, _ = api.organizations_api.list()
        assert [o.slug for o in page.results] == [beta, alpha]
    with client(token=people["owner"].token) as api:
        page, _ = api.organizations_api.list()
        assert [o.slug for o in page.results] == [alpha]


def test_sdk_lists_and_retrieves_memberships(admin_token, orgs):
    alpha, beta, people = orgs
    owner, worker = people["owner"], people["worker"]
    with client(token=admin_token) as api:
        alpha_id = api.organizations_api.list(slug=alpha)[0].results[0].id
        page, resp = api.memberships_api.list(org=alpha, sort="user")
        assert resp.status == 200
        assert [(m.user.username, m.role) for m in page.results] == \
            [(owner.username, "owner"), (worker.username, "worker")]
        member = page.results[1]
        assert isinstance(member, models.MembershipRead)
        assert isinstance(member.user, models.BasicUser)
        assert (member.organization, member.is_active, member.invitation) == (alpha_id, True, None)
        assert member.user.last_name == "Hand"
        assert member.user.url.endswith(f"/api/users/{worker.id}")
        assert isinstance(member.joined_date, datetime)
        one, _ = api.memberships_api.retrieve(member.id)
        assert one.to_dict() == member.to_dict()

        # Every way of naming the org, and the SDK's own paging helper.
        by_header, _ = api.memberships_api.list(x_organization=alpha, role="owner")
        assert [m.user.id for m in by_header.results] == [owner.id]
        every = get_paginated_collection(api.memberships_api.list_endpoint, org_id=alpha_id,
                                         page_size=1)
        assert sorted(m.user.id for m in every) == sorted([owner.id, worker.id])
        searched, _ = api.memberships_api.list(org=beta, search=worker.username[-4:])
        assert [m.role for m in searched.results] == ["supervisor"]

    with client(token=worker.token) as api:
        own, _ = api.memberships_api.list()
        assert sorted(m.role for m in own.results) == ["supervisor", "worker"]
        mates, _ = api.memberships_api.list(org=alpha)
        assert {m.user.id for m in mates.results} == {owner.id, worker.id}


def test_an_outsider_gets_the_answers_of_ids_nobody_holds(orgs):
    alpha, _, people = orgs
    owner, outsider = people["owner"], people["outsider"]
    with client(token=owner.token) as api:
        alpha_id = api.organizations_api.list()[0].results[0].id
        member_id = api.memberships_api.list(org=alpha, user=owner.username)[0].results[0].id
    with client(token=outsider.token) as api:
        page, _ = api.organizations_api.list()
        assert page.count == 0
        own, _ = api.memberships_api.list()
        assert own.count == 0
        answers = []
        for call, real, fake in [(api.organizations_api.retrieve, alpha_id, 987654),
                                 (api.memberships_api.retrieve, member_id, 987654 * 10**10 + 1)]:
            for target in (real, fake):
                with pytest.raises(exceptions.NotFoundException) as err:
                    call(target)
                answers.append(error_of(err))
        assert answers == [{"detail": "Not found."}] * 4
        with pytest.raises(exceptions.NotFoundException) as err:
            api.memberships_api.list(org=alpha)
        assert error_of(err) == {"detail": f"{alpha} organization does not exist."}


def test_other_methods_are_405(admin_token, orgs):
    resp = raw("DELETE", "/api/organizations/1", token=admin_token)
    assert resp.status == 405, resp.body
    assert resp.headers["allow"] == "GET"
    assert resp.body == {"detail": 'Method "DELETE" not allowed.'}
