"""OAuth 2.0 client credentials through `cargo lambda watch`: an org's client
(`usersctl org oauth-client`) gets an access token from POST /api/v1/oauth/token
(HTTP Basic, as Entra ID sends it, and form parameters) with nothing but the
standard library's HTTP client, provisions and lists Users under the org's SCIM
base with it, and is refused everywhere else and after `usersctl org
oauth-client revoke`."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

from helpers import BASE_URL, raw, usersctl

TOKEN_URL = "/api/v1/oauth/token"


def post_form(fields: dict, *, basic: tuple[str, str] | None = None):
    """POST an application/x-www-form-urlencoded body: (status, headers, JSON body)."""
    req = urllib.request.Request(BASE_URL + TOKEN_URL, method="POST",
                                 data=urllib.parse.urlencode(fields).encode())
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    if basic:
        # RFC 6749 §2.3.1: form-urlencode the id and the secret, then Basic.
        pair = ":".join(urllib.parse.quote_plus(v) for v in basic)
        req.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, json.load(err)


def scim(method: str, path: str, token: str, body: dict | None = None):
    return raw(method, path, body=body, headers={"Authorization": f"Bearer {token}"})


def new_client(slug: str) -> tuple[str, str]:
    out = usersctl("org", "oauth-client", "--slug", slug)
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert out.splitlines()[-1].startswith("client_secret="), out
    return values["client_id"], values["client_secret"]


def test_client_credentials_provision_only_under_the_org_base(run_id):
    # Not named after run_id: test_orgs_api counts the orgs a search for it finds.
    slug = "oa" + uuid.uuid4().hex[:9]
    domain = f"{slug}.example"
    usersctl("org", "create", "--slug", slug, "--name", f"OAuth {slug}")
    usersctl("org", "domain", "add", "--slug", slug, "--domain", domain)
    client_id, secret = new_client(slug)

    status, headers, body = post_form({"grant_type": "client_credentials"}, basic=(client_id, secret))
    assert status == 200, body
    assert headers["cache-control"] == "no-store" and headers["pragma"] == "no-cache"
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    token = body["access_token"]
    status, _, form_body = post_form({"grant_type": "client_credentials",
                                      "client_id": client_id, "client_secret": secret})
    assert status == 200, form_body

    base = f"/api/v1/scim/orgs/{slug}"
    user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": f"ada@{domain}", "emails": [{"value": f"ada@{domain}", "type": "work"}]}
    created = scim("POST", f"{base}/Users", token, user)
    assert created.status == 201, created.body
    listed = scim("GET", f"{base}/Users", token)
    assert listed.status == 200, listed.body
    assert [u["userName"] for u in listed.body["Resources"]] == [f"ada@{domain}"]
    assert listed.body["Resources"][0]["meta"]["location"].startswith(f"{BASE_URL}{base}/Users/")

    for path in ("/api/v1/scim/Users", "/api/v1/scim/orgs/nosuchorg/Users"):
        assert scim("GET", path, token).status == 401, path
    assert scim("GET", "/api/users/self", token).status == 401

    status, headers, body = post_form({"grant_type": "client_credentials"}, basic=(client_id, "wrong"))
    assert (status, body["error"]) == (401, "invalid_client")
    assert headers["www-authenticate"].startswith("Basic ")
    status, _, body = post_form({"grant_type": "password"}, basic=(client_id, secret))
    assert (status, body["error"]) == (400, "unsupported_grant_type")

    usersctl("org", "oauth-client", "revoke", "--client-id", client_id)
    assert scim("GET", f"{base}/Users", token).status == 401
    status, _, body = post_form({"grant_type": "client_credentials"}, basic=(client_id, secret))
    assert (status, body["error"]) == (401, "invalid_client")
