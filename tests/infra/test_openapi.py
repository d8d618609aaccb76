"""docs/openapi.yaml against the route tables, and against OpenAPI 3.1 itself.

The document must describe exactly the operations the router in Cargo.toml sends to
an operation's function (every method and path but the fallbacks' and the
catch-alls'), and nothing infra/template.yaml does not route: a route added to a table
and not described, or described and not routed, fails here and names itself. Path
parameters compare by position (`{id}` and `{userId}` are one route). It must also be
a valid OpenAPI 3.1 document (openapi-spec-validator), since `GET /api/schema` serves
it and `make test` fuzzes both stacks with it (tests/e2e/test_openapi.py).
"""

import copy

import pytest
from openapi_spec_validator import validate

import infra_model as m


@pytest.fixture(scope="module")
def document():
    return m.load_openapi()


@pytest.fixture(scope="module")
def router():
    return m.router_routes(m.load_router())


@pytest.fixture(scope="module")
def template():
    return m.template_routes(m.load_template())


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    validate(document)


def test_the_document_describes_exactly_the_routed_operations(document, router, template):
    drift = m.openapi_drift(document, router, template)
    assert not drift, "\n".join(drift)


def test_rfc_only_paths_say_so(document):
    """/Me and /Bulk exist only in the rfc profile; the document says which."""
    marked = {path for path, item in document["paths"].items() if item.get("x-scim-profiles") == ["rfc"]}
    assert marked == {"/api/v1/scim/Me", "/api/v1/scim/Bulk",
                      "/api/v1/scim/orgs/{slug}/Me", "/api/v1/scim/orgs/{slug}/Bulk"}


def test_only_the_public_routes_need_no_credentials(document):
    """The document and the code agree on what is public: the functions that do not
    authenticate (the schema, the change events' key)."""
    public = set()
    for path, item in document["paths"].items():
        if "$ref" in item:
            item = document["components"]["pathItems"][item["$ref"].rsplit("/", 1)[1]]
        public |= {(method, path) for method, op in item.items()
                   if method in m.OPENAPI_METHODS and op.get("security") == []}
    assert public == {("get", "/api/schema"), ("get", "/api/schema/"),
                      ("get", "/api/v1/scim/.well-known/jwks.json")}


# ---------------------------------------------------------------- the test can fail


def _without(document, path, method):
    broken = copy.deepcopy(document)
    del broken["paths"][path][method]
    return broken


def test_drift_is_reported_for_broken_copies(document, router, template):
    """Deliberately broken copies of the document and of the router must be reported,
    naming the operation."""
    broken_documents = {
        "GET /api/users/{}": _without(document, "/api/users/{id}", "get"),
        "POST /api/v1/scim/Bulk": _without(document, "/api/v1/scim/Bulk", "post"),
    }
    extra = copy.deepcopy(document)
    extra["paths"]["/api/users"]["post"] = copy.deepcopy(extra["paths"]["/api/users"]["get"])
    broken_documents["POST /api/users"] = extra
    slash_dropped = copy.deepcopy(document)
    del slash_dropped["paths"]["/api/schema/"]
    broken_documents["GET /api/schema/"] = slash_dropped
    for what, broken in broken_documents.items():
        drift = m.openapi_drift(broken, router, template)
        assert any(line.startswith(what + ":") for line in drift), (what, drift)

    # A route added to the tables (a third SCIM base, say) and not described.
    added = [m.Route("GET", "/api/v1/scim/regions/{region}/Users", "scim-users-list")]
    drift = m.openapi_drift(document, router + added, template)
    assert drift == ["GET /api/v1/scim/regions/{}/Users: routed (Cargo.toml), not in docs/openapi.yaml"]
    drift = m.openapi_drift(document, router, template + added)
    assert drift == ["GET /api/v1/scim/regions/{}/Users: in infra/template.yaml, not in docs/openapi.yaml"]
    # A tenant-base operation dropped from the document.
    drift = m.openapi_drift(_without(document, "/api/v1/scim/orgs/{slug}/Users", "get"), router, template)
    assert drift == ["GET /api/v1/scim/orgs/{}/Users: routed (Cargo.toml), not in docs/openapi.yaml",
                     "GET /api/v1/scim/orgs/{}/Users: in infra/template.yaml, not in docs/openapi.yaml"]
    # The token endpoint's catch-all routes what the document says of it, and no more.
    extra = copy.deepcopy(document)
    extra["paths"]["/api/v1/oauth/tokens"] = copy.deepcopy(extra["paths"]["/api/v1/oauth/token"])
    drift = m.openapi_drift(extra, router, template)
    assert drift == ["POST /api/v1/oauth/tokens: in docs/openapi.yaml, routed nowhere"]

    # A path parameter renamed is no drift; a fallback route is no operation.
    renamed = copy.deepcopy(document)
    renamed["paths"]["/api/users/{userId}"] = renamed["paths"].pop("/api/users/{id}")
    assert not m.openapi_drift(renamed, router, template)
    assert not m.openapi_drift(document, router + [m.Route("PUT", "/api/users", "users-fallback")], template)


def test_the_validator_refuses_a_broken_document(document):
    broken = copy.deepcopy(document)
    del broken["paths"]["/api/users/{id}"]["parameters"]  # {id} no longer declared
    with pytest.raises(Exception):
        validate(broken)
    broken = copy.deepcopy(document)
    broken["paths"]["/api/users"]["get"]["responses"]["200"]["content"]["application/vnd.cvat+json"]["schema"] = {
        "$ref": "#/components/schemas/NoSuchSchema"}
    with pytest.raises(Exception):
        validate(broken)
