"""Change events end to end, as a consuming app sees them: `scripts/e2e.sh` follows the main
stack's DynamoDB Local stream into `events-publish` (`usersctl events follow`, Lambda's batches
through `cargo lambda watch`); each test starts a receiver of its own (RFC 8935: it answers
202), subscribes it with `usersctl events subscribe`, changes users through both APIs, and
verifies the SETs it receives against the JWKS the API publishes, with PyJWT.

Added time: about 10 s (the follower polls every 200 ms; a SET arrives within about a second).
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from helpers import BASE_URL, EVENTS_REPORT, last_line, raw, usersctl
from scim_helpers import PATCH_SCHEMA, USER_SCHEMA, scim

PATCH_FULL = "urn:ietf:params:scim:event:prov:patch:full"
CREATE_FULL = "urn:ietf:params:scim:event:prov:create:full"
DEACTIVATE = "urn:ietf:params:scim:event:prov:deactivate"
WAIT = 20.0


class Receiver:
    """An RFC 8935 receiver on a loopback port: records each POST and answers 202, or 500 to
    the first `fail_first` ones."""

    def __init__(self, fail_first: int = 0, port: int = 0):
        self.received: list[dict] = []
        self.fail_first = fail_first
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                with lock:
                    failing = outer.fail_first > 0
                    if failing:
                        outer.fail_first -= 1
                    outer.received.append({"at": time.monotonic(),
                                           "headers": {k.lower(): v for k, v in self.headers.items()},
                                           "body": body, "status": 500 if failing else 202})
                self.send_response(500 if failing else 202)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[str]:
        return [r["body"] for r in self.received if r["status"] == 202]

    def wait(self, predicate, what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not predicate():
            assert time.monotonic() < deadline, f"no {what} within {WAIT} s: {self.received}"
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def subscribe():
    """usersctl events subscribe, undone after the test (so no later test pushes to it)."""
    made = []

    def make(receiver: Receiver, *extra: str, secret: str | None = None) -> str:
        args = ["events", "subscribe", "--url", receiver.url, *extra]
        if secret:
            args.append("--secret-stdin")
        sub = last_line(usersctl(*args, stdin=secret))
        made.append(sub)
        return sub

    yield make
    for sub in made:
        usersctl("events", "unsubscribe", sub)


@pytest.fixture(scope="module")
def jwks() -> jwt.PyJWKSet:
    reply = raw("GET", "/api/v1/scim/.well-known/jwks.json")
    assert reply.status == 200, reply
    assert reply.headers["content-type"] == "application/jwk-set+json"
    return jwt.PyJWKSet.from_dict(reply.body)


def verify(token: str, keys: jwt.PyJWKSet, audience: str) -> dict:
    """What a consuming app does with a SET: check its type, find its key by `kid` in the
    published JWKS, verify the ES256 signature, issuer and audience."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "secevent+jwt" and header["alg"] == "ES256", header
    key = next(k for k in keys.keys if k.key_id == header["kid"])
    return jwt.decode(token, key.key, algorithms=["ES256"], audience=audience,
                      issuer=f"{BASE_URL}/api/v1/scim",
                      options={"require": ["iss", "aud", "iat", "jti"]})


def admin_token() -> str:
    return os.environ["E2E_ADMIN_TOKEN"]


def create_scim_user(name: str) -> str:
    reply = scim("POST", BASE_URL, "/Users", token=admin_token(), body={
        "schemas": [USER_SCHEMA], "userName": name, "name": {"givenName": "Lea", "familyName": "Ver"},
        "emails": [{"value": f"{name}@example.com", "type": "work"}]})
    assert reply.status == 201, reply
    return reply.body["id"]


def entra_deactivate(user_id: str):
    # What Microsoft Entra ID sends when a leaver is disabled: "Replace", a string boolean.
    return scim("PATCH", BASE_URL, f"/Users/{user_id}", token=admin_token(), body={
        "schemas": [PATCH_SCHEMA], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})


def test_an_entra_deactivation_arrives_as_a_verified_set_within_seconds(run_id, subscribe, jwks):
    receiver = Receiver()
    try:
        subscribe(receiver, secret="e2e-receiver-secret")
        user_id = create_scim_user(f"{run_id}_leaver")
        # A change through the admin API, then the deactivation through SCIM.
        renamed = raw("PATCH", f"/api/users/{user_id}", token=admin_token(), body={"first_name": "Leah"})
        assert renamed.status == 200, renamed
        sent = time.monotonic()
        reply = entra_deactivate(user_id)
        assert reply.status == 200, reply

        def mine() -> list[dict]:
            claims = (verify(t, jwks, receiver.url) for t in receiver.accepted())
            return [c for c in claims if c["sub_id"]["uri"] == f"/Users/{user_id}"]

        receiver.wait(lambda: any(DEACTIVATE in c["events"] for c in mine()), "deactivation SET")
        arrived = next(r["at"] for r in receiver.received
                       if DEACTIVATE in json.dumps(jwt.decode(r["body"], options={"verify_signature": False})))
        latency = arrived - sent
        EVENTS_REPORT.append(f"an Entra deactivation arrived as a verified SET {latency:.2f} s after its PATCH")
        assert latency < 10, latency

        # In the order of the writes: created, renamed (admin API), deactivated (SCIM).
        sets = mine()
        assert [list(c["events"]) for c in sets] == [[CREATE_FULL], [PATCH_FULL], [PATCH_FULL, DEACTIVATE]]
        deactivation = sets[-1]
        assert deactivation["sub_id"] == {"format": "scim", "uri": f"/Users/{user_id}", "id": user_id}
        assert deactivation["events"][PATCH_FULL]["data"]["Operations"] == [
            {"op": "replace", "path": "active", "value": False}]
        assert deactivation["aud"] == receiver.url
        assert deactivation["txn"] and deactivation["jti"] and deactivation["toe"]
        request = receiver.received[-1]
        assert request["headers"]["content-type"] == "application/secevent+jwt"
        assert request["headers"]["authorization"] == "Bearer e2e-receiver-secret"
        # Never a secret: no credential or lockout field in anything received.
        everything = json.dumps([jwt.decode(t, options={"verify_signature": False}) for t in receiver.accepted()])
        for secret in ("password", "token_hashes", "login_failures", "e2e-receiver-secret"):
            assert secret not in everything, secret
    finally:
        receiver.close()


def test_a_receiver_failing_twice_gets_the_same_jti_again(run_id, subscribe, jwks):
    receiver = Receiver(fail_first=2)
    try:
        subscribe(receiver)
        user_id = create_scim_user(f"{run_id}_retried")
        receiver.wait(lambda: len(receiver.accepted()) >= 1, "SET after two failures")
        first_three = receiver.received[:3]
        assert [r["status"] for r in first_three] == [500, 500, 202]
        jtis = {jwt.decode(r["body"], options={"verify_signature": False})["jti"] for r in first_three}
        assert len(jtis) == 1, jtis
        claims = verify(receiver.accepted()[0], jwks, receiver.url)
        assert claims["sub_id"]["uri"] == f"/Users/{user_id}"
    finally:
        receiver.close()


def test_replay_delivers_what_a_dead_receiver_missed(run_id, subscribe, jwks):
    dead = Receiver()
    port = dead.port
    dead.close()  # nothing listens there now
    sub = subscribe(dead)
    user_id = create_scim_user(f"{run_id}_missed")
    assert entra_deactivate(user_id).status == 200

    def kept() -> int:
        line = next(l for l in usersctl("events", "list").splitlines() if l.startswith(sub))
        return int(line.split("kept=")[1].split()[0])

    deadline = time.monotonic() + WAIT
    while kept() < 2:
        assert time.monotonic() < deadline, usersctl("events", "list")
        time.sleep(0.2)
    back = Receiver(port=port)
    try:
        out = usersctl("events", "replay", "--subscriber", sub)
        assert "0 still kept" in out, out
        claims = [verify(t, jwks, back.url) for t in back.accepted()]
        assert [(c["sub_id"]["uri"], list(c["events"])) for c in claims] == [
            (f"/Users/{user_id}", [CREATE_FULL]), (f"/Users/{user_id}", [PATCH_FULL, DEACTIVATE])]
    finally:
        back.close()


def test_service_provider_config_advertises_rfc_9967_events_where_the_rfc_puts_them():
    """RFC 9967 updates RFC 7643: `securityEvents` is an attribute of ServiceProviderConfig's
    core schema, not of an extension, so it sits beside `patch` and `bulk`. A client that
    knows RFC 9967 reads the event URIs there; a client that knows only RFC 7643 must ignore
    it. scim2-models (under scim2-cli and scim2-tester) refuses any attribute its model lacks,
    under an extension URN too, unless told to keep them: this is why the rfc stack
    (scripts/e2e.sh) runs `scim2 … test` with SCIM_SECURITY_EVENTS=off. When scim2-models
    learns RFC 9967 the last check fails, and the switch can go."""
    import pydantic
    from scim2_models import Context, ScimPolicy, ServiceProviderConfig

    reply = scim("GET", BASE_URL, "/ServiceProviderConfig", token=admin_token())
    assert reply.status == 200, reply.body
    config = reply.body
    assert config["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    events = config["securityEvents"]
    assert events["asyncRequest"] == "none"
    assert "urn:ietf:params:scim:event:prov:deactivate" in events["eventUris"], events
    keep = ScimPolicy(unknown=ScimPolicy.Unknown.keep)
    parsed = ServiceProviderConfig.model_validate(
        config, scim_ctx=Context.RESOURCE_QUERY_RESPONSE, scim_policy=keep)
    assert parsed.unknown_attributes == {"securityEvents": events}
    assert parsed.patch.supported is True
    with pytest.raises(pydantic.ValidationError, match="securityEvents"):
        ServiceProviderConfig.model_validate(config, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
