"""scripts/devfront.py's own logic, without a stack: it must pick the function
`cargo lambda watch` picks for every route of the router table, and build the event API
Gateway builds for a body that is not UTF-8."""

from __future__ import annotations

import base64
import os
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import devfront  # noqa: E402 (after the path is set)

ROUTES = devfront.load_routes(os.path.join(ROOT, "Cargo.toml"))


def test_every_route_of_the_router_table_goes_to_its_function():
    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        router = tomllib.load(f)["workspace"]["metadata"]["lambda"]["watch"]["router"]
    checked = 0
    for pattern, target in router.items():
        path = (pattern.replace("{slug}", "acme").replace("{id}", "42")
                .replace("{*rest}", "no/such/thing"))
        pairs = ([("GET", target), ("PATCH", target)] if isinstance(target, str)
                 else [(r["method"], r["function"]) for r in target])
        for method, function in pairs:
            params = {"id": "42"} if "{id}" in pattern else (
                {"rest": "no/such/thing"} if "{*rest}" in pattern else {})
            if "{slug}" in pattern:
                params = {"slug": "acme", **params}
            assert devfront.match(ROUTES, method, path) == (function, params), (method, path)
            checked += 1
    assert checked > 100
    assert devfront.match(ROUTES, "GET", "/elsewhere") is None


def test_a_body_that_is_not_utf8_becomes_an_http_api_event_with_it_base64_encoded():
    body = b"\x0a\xff\x0b"
    assert not devfront.is_text(body) and devfront.is_text("é".encode())
    headers = {"Host": "localhost:9000", "Content-Type": "application/json",
               "Cookie": "a=1; b=2", "X-Twice": "1"}
    event = devfront.http_api_event("PATCH", "/api/users/7?x=1&x=2", headers, body,
                                    {"id": "7"}, "127.0.0.1")
    assert event["version"] == "2.0" and event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body
    assert event["requestContext"]["http"]["method"] == "PATCH"
    assert (event["rawPath"], event["rawQueryString"]) == ("/api/users/7", "x=1&x=2")
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["pathParameters"] == {"id": "7"}
    assert event["cookies"] == ["a=1", "b=2"] and "cookie" not in event["headers"]
    assert event["headers"]["content-type"] == "application/json"
    status, headers, data = devfront.http_api_answer({
        "statusCode": 400, "headers": {"content-type": "application/json"},
        "body": base64.b64encode(b'{"detail":"x"}').decode(), "isBase64Encoded": True})
    assert (status, headers, data) == (400, [("content-type", "application/json")],
                                       b'{"detail":"x"}')
