"""Two customers' identity providers at once, through `cargo lambda watch`: each org set up
with usersctl (a tenant token, a verified domain) provisions at its own SCIM base
/api/v1/scim/orgs/<slug>, and sees only its own users; its token is an invalid token
anywhere else (another org's base, the global base, the admin API)."""

from __future__ import annotations

import concurrent.futures

from helpers import last_line, raw, usersctl


def setup_tenant(run_id: str, name: str) -> tuple[str, str, str]:
    slug = f"{name}{run_id[-6:]}"[:16]
    domain = f"{slug}.example.com"
    usersctl("org", "create", "--slug", slug, "--name", f"{name} {slug}")
    usersctl("org", "domain", "add", "--slug", slug, "--domain", domain)
    token = last_line(usersctl("org", "scim-token", "--slug", slug))
    return slug, domain, token


def scim(method: str, path: str, token: str, body: object = None):
    return raw(method, path, body=body,
               headers={"Authorization": f"Bearer {token}",
                        "Content-Type": "application/scim+json"})


def user(name: str) -> dict:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
            "name": {"givenName": "Pat", "familyName": "Doe"},
            "emails": [{"value": name, "type": "work", "primary": True}], "active": True}


def test_two_tenants_provision_at_once_and_see_only_their_own(run_id):
    (a, a_domain, a_token), (b, b_domain, b_token) = (
        setup_tenant(run_id, "ta"), setup_tenant(run_id, "tb"))

    def provision(slug: str, domain: str, token: str) -> list[str]:
        ids = []
        for k in range(3):
            r = scim("POST", f"/api/v1/scim/orgs/{slug}/Users", token, user(f"u{k}@{domain}"))
            assert r.status == 201, r.body
            assert r.body["meta"]["location"].endswith(f"/api/v1/scim/orgs/{slug}/Users/{r.body['id']}")
            ids.append(r.body["id"])
        return ids

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        a_ids, b_ids = pool.map(lambda t: provision(*t), [(a, a_domain, a_token),
                                                          (b, b_domain, b_token)])
    listed = scim("GET", f"/api/v1/scim/orgs/{a}/Users", a_token)
    assert listed.status == 200, listed.body
    assert sorted(u["id"] for u in listed.body["Resources"]) == sorted(a_ids)
    # B's user by id under A's base: as an id nobody has.
    assert scim("GET", f"/api/v1/scim/orgs/{a}/Users/{b_ids[0]}", a_token).status == 404
    # A's token elsewhere: an invalid token, in each API's format.
    for path in (f"/api/v1/scim/orgs/{b}/Users", "/api/v1/scim/Users"):
        r = scim("GET", path, a_token)
        assert (r.status, r.body["detail"]) == (401, "Invalid token."), (path, r.body)
    r = raw("GET", "/api/users", headers={"Authorization": f"Bearer {a_token}"})
    assert (r.status, r.body) == (401, {"detail": "Invalid token."})
    # A name outside A's domains: 400 before any lookup.
    r = scim("POST", f"/api/v1/scim/orgs/{a}/Users", a_token, user(f"x@{b_domain}"))
    assert (r.status, r.body["scimType"]) == (400, "invalidValue"), r.body
    # Revoked: an invalid token at once.
    usersctl("token", "revoke", a_token)
    assert scim("GET", f"/api/v1/scim/orgs/{a}/Users", a_token).status == 401
