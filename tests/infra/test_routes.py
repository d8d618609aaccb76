"""The SAM template's HTTP API routes against the cargo-lambda router in Cargo.toml,
and every function package against the operation it serves.

How the two tables correspond: the router lists every method of every path (and
`{*rest}` catch-alls); the template lists each operation's route, the greedy
`ANY …/{proxy+}` routes, and only those per-method fallbacks that a `{id}` route
would otherwise capture. They agree when every request reaches the same function
through both: the test probes every path of either table (parameters filled with
sample values and every literal segment of both tables) with every method, and
resolves it with cargo-lambda's rule (most specific path first, then the method on
that path) and with API Gateway's (the most specific route among those whose
method matches, explicit method before ANY).
"""

import copy

import pytest

import infra_model as m

FALLBACKS = {"users-fallback", "scim-fallback"}

# Each operation of both APIs and the one function package that serves it.
OPERATIONS = {
    ("GET", "/api/users"): "users-list",
    ("GET", "/api/users/self"): "users-self",
    ("GET", "/api/users/{id}"): "users-retrieve",
    ("PATCH", "/api/users/{id}"): "users-update",
    ("DELETE", "/api/users/{id}"): "users-destroy",
    ("GET", "/api/organizations"): "organizations-list",
    ("GET", "/api/organizations/{id}"): "organizations-retrieve",
    ("GET", "/api/memberships"): "memberships-list",
    ("GET", "/api/memberships/{id}"): "memberships-retrieve",
    ("GET", "/api/schema"): "schema-get",
    ("GET", "/api/schema/"): "schema-get",
    ("POST", "/api/v1/scim/Users"): "scim-users-create",
    ("GET", "/api/v1/scim/Users"): "scim-users-list",
    ("POST", "/api/v1/scim/Users/.search"): "scim-users-search",
    ("POST", "/api/v1/scim/.search"): "scim-users-search",
    ("GET", "/api/v1/scim/Users/{id}"): "scim-users-get",
    ("PUT", "/api/v1/scim/Users/{id}"): "scim-users-replace",
    ("PATCH", "/api/v1/scim/Users/{id}"): "scim-users-patch",
    ("DELETE", "/api/v1/scim/Users/{id}"): "scim-users-delete",
    ("POST", "/api/v1/scim/Groups"): "scim-groups-create",
    ("GET", "/api/v1/scim/Groups"): "scim-groups-list",
    ("POST", "/api/v1/scim/Groups/.search"): "scim-groups-search",
    ("GET", "/api/v1/scim/Groups/{id}"): "scim-groups-get",
    ("PUT", "/api/v1/scim/Groups/{id}"): "scim-groups-replace",
    ("PATCH", "/api/v1/scim/Groups/{id}"): "scim-groups-patch",
    ("DELETE", "/api/v1/scim/Groups/{id}"): "scim-groups-delete",
    ("GET", "/api/v1/scim/Me"): "scim-me-get",
    ("PUT", "/api/v1/scim/Me"): "scim-me-replace",
    ("PATCH", "/api/v1/scim/Me"): "scim-me-patch",
    ("POST", "/api/v1/scim/Bulk"): "scim-bulk",
    ("GET", "/api/v1/scim/ServiceProviderConfig"): "scim-discovery",
    ("GET", "/api/v1/scim/ResourceTypes"): "scim-discovery",
    ("GET", "/api/v1/scim/ResourceTypes/{id}"): "scim-discovery",
    ("GET", "/api/v1/scim/Schemas"): "scim-discovery",
    ("GET", "/api/v1/scim/Schemas/{id}"): "scim-discovery",
    ("GET", "/api/v1/scim/.well-known/jwks.json"): "events-jwks",
    ("POST", "/api/v1/oauth/token"): "oauth-token",
}
# Every SCIM operation again under an org's tenant base, served by the same
# function; the events' key is global only.
OPERATIONS.update(
    {
        (method, path.replace("/api/v1/scim/", "/api/v1/scim/orgs/{slug}/", 1)): function
        for (method, path), function in list(OPERATIONS.items())
        if path.startswith("/api/v1/scim/") and function != "events-jwks"
    }
)
# Functions no HTTP route reaches: the stream function, invoked by the table's
# event source mapping (locally, by `usersctl events follow`).
NOT_ROUTED = {"events-publish"}
# Everything else under each prefix answers 405/404 in that API's format.
# The token endpoint answers its other methods itself (405, RFC 6749's format).
FALLBACK_OF_PREFIX = [("/api/v1/scim/", "scim-fallback"), ("/api/v1/oauth/", "oauth-token"),
                      ("/api/", "users-fallback")]


@pytest.fixture(scope="module")
def template():
    return m.load_template()


@pytest.fixture(scope="module")
def router():
    return m.router_routes(m.load_router())


def test_both_tables_route_every_request_to_the_same_function(router, template):
    diffs = m.parity_differences(router, m.template_routes(template))
    assert not diffs, "\n".join(diffs)


def test_every_operation_is_an_explicit_template_route(router, template):
    missing = m.missing_explicit_routes(router, m.template_routes(template), FALLBACKS)
    assert not missing, "reached only through a greedy route:\n" + "\n".join(missing)


def test_template_routes_are_unique(template):
    keys = [(r.method, r.path) for r in m.template_routes(template)]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)


def test_every_function_package_is_one_template_function():
    packages = m.function_packages()
    assert len(packages) == 34, packages
    assert all(directory == name for directory, name in packages.items()), packages
    binaries = sorted(m.binary_of(r) for r in m.serverless_functions(m.load_template()).values())
    assert binaries == sorted(packages.values())


@pytest.mark.parametrize("operation", sorted(OPERATIONS), ids=" ".join)
def test_spec_operation_reaches_its_function(operation, router, template):
    method, path = operation
    want = OPERATIONS[operation]
    concrete = path.replace("{id}", "7")
    if "Schemas/" in path:
        concrete = path.replace("{id}", "urn:ietf:params:scim:schemas:core:2.0:User")
    elif "ResourceTypes/" in path:
        concrete = path.replace("{id}", "User")
    assert m.resolve_router(router, method, concrete) == want
    assert m.resolve_api_gateway(m.template_routes(template), method, concrete) == want


def test_each_function_serves_only_its_spec_operations(router):
    """One function per operation: a non-fallback function appears in the router
    only where OPERATIONS puts it, and every other entry goes to its prefix's fallback."""
    packages = set(m.function_packages())
    for route in router:
        assert route.function in packages, f"{route}: no functions/{route.function}"
        spec = OPERATIONS.get((route.method, route.path))
        if spec is not None:
            assert route.function == spec, route
        else:
            prefix_fallback = next(f for p, f in FALLBACK_OF_PREFIX if route.path.startswith(p))
            assert route.function == prefix_fallback, f"{route}: not an operation of either API, so {prefix_fallback}"
    served = {r.function for r in router}
    assert served == packages - NOT_ROUTED, f"packages never routed: {packages - NOT_ROUTED - served}"


# ---------------------------------------------------------------- the test can fail


def _without_event(template, logical_id, event):
    broken = copy.deepcopy(template)
    del broken["Resources"][logical_id]["Properties"]["Events"][event]
    return broken


def test_parity_check_detects_broken_copies(router, template):
    """Deliberately broken copies of either table must be reported."""
    broken_templates = {
        "operation route dropped": _without_event(template, "UsersSelfFunction", "GetSelf"),
        "shadowing fallback dropped": _without_event(template, "ScimFallbackFunction", "GetUsersSearch"),
        "greedy route dropped": _without_event(template, "UsersFallbackFunction", "AnyApi"),
    }
    retargeted = copy.deepcopy(template)
    retargeted["Resources"]["ScimUsersGetFunction"]["Metadata"]["BuildProperties"]["Binary"] = "scim-users-patch"
    broken_templates["function swapped"] = retargeted
    extra = copy.deepcopy(template)
    extra["Resources"]["UsersListFunction"]["Properties"]["Events"]["PostUsers"] = {
        "Type": "HttpApi", "Properties": {"ApiId": {"Ref": "HttpApi"}, "Method": "POST", "Path": "/api/users"}}
    broken_templates["extra route"] = extra
    for what, broken in broken_templates.items():
        assert m.parity_differences(router, m.template_routes(broken)), f"not detected: {what}"

    routes = m.template_routes(template)
    broken_routers = {
        "router entry retargeted": [m.Route(r.method, r.path, "users-fallback")
                                    if (r.method, r.path) == ("GET", "/api/users/self") else r for r in router],
        "router catch-all dropped": [r for r in router if r.path != "/api/v1/scim/{rest+}"],
        "router method dropped": [r for r in router if (r.method, r.path) != ("PUT", "/api/v1/scim/Users/{id}")],
    }
    for what, broken in broken_routers.items():
        assert m.parity_differences(broken, routes), f"not detected: {what}"

    assert m.missing_explicit_routes(
        router, m.template_routes(_without_event(template, "UsersListFunction", "GetUsers")), FALLBACKS)


def test_router_reads_cargo_toml_syntax():
    text = """
[workspace.metadata.lambda.watch.router]
"/a/{id}" = [{ method = "GET", function = "f" }]
"/a/{*rest}" = "g"
"""
    routes = m.router_routes(m.load_router(text))
    assert routes == [m.Route("GET", "/a/{id}", "f"), m.Route("ANY", "/a/{rest+}", "g")]
    assert m.resolve_router(routes, "GET", "/a/1") == "f"
    assert m.resolve_router(routes, "POST", "/a/1") is None  # the path matched; the method did not
    assert m.resolve_router(routes, "POST", "/a/1/2") == "g"
    assert m.resolve_api_gateway(routes, "POST", "/a/1") == "g"
