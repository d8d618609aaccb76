"""The template's table, functions, parameters and outputs."""

import copy
import re

import pytest

import infra_model as m


@pytest.fixture(scope="module")
def template():
    return m.load_template()


@pytest.fixture(scope="module")
def declaration():
    return m.load_declaration()


def test_table_is_the_one_the_code_creates(template, declaration):
    """The code's CreateTable request (table::table_definition, which `usersctl
    table create` and the tests send) is the source of truth: same keys, indexes,
    projections, billing and TTL in the template."""
    diffs = m.table_differences(template, declaration)
    assert not diffs, "\n".join(diffs)
    # What the code creates, in words: pk/sk, gsi1 and the search index on
    # gsi1pk/gsi1sk, the modified index on gsi1pk/last_modified, every key a
    # string, on-demand, TTL on expires_at.
    table = declaration["table"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert {d["AttributeType"] for d in table["AttributeDefinitions"]} == {"S"}
    assert sorted(g["IndexName"] for g in table["GlobalSecondaryIndexes"]) == ["gsi1", "modified", "search", "tenant"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    modified = next(g for g in table["GlobalSecondaryIndexes"] if g["IndexName"] == "modified")
    assert [k["AttributeName"] for k in modified["KeySchema"]] == ["gsi1pk", "last_modified"]


def test_table_check_detects_broken_copies(template, declaration):
    def broken(change):
        copied = copy.deepcopy(template)
        change(copied["Resources"][m.table_id(copied)]["Properties"])
        return m.table_differences(copied, declaration)

    gsi1 = lambda props: next(g for g in props["GlobalSecondaryIndexes"] if g["IndexName"] == "gsi1")
    assert any("index gsi1 Projection" in d for d in broken(
        lambda p: gsi1(p)["Projection"]["NonKeyAttributes"].append("password_hash")))
    assert any("index gsi1 Projection" in d for d in broken(
        lambda p: gsi1(p)["Projection"]["NonKeyAttributes"].remove("idp_owned")))
    assert any("index tenant: only in the code" in d for d in broken(
        lambda p: p["GlobalSecondaryIndexes"].pop()))
    modified = lambda props: next(g for g in props["GlobalSecondaryIndexes"] if g["IndexName"] == "modified")
    assert any("index modified KeySchema" in d for d in broken(
        lambda p: modified(p)["KeySchema"][1].update(AttributeName="gsi1sk")))
    assert any(d.startswith("KeySchema") for d in broken(lambda p: p["KeySchema"].reverse()))
    assert any(d.startswith("TimeToLiveSpecification") for d in broken(
        lambda p: p.update(TimeToLiveSpecification={"AttributeName": "ttl", "Enabled": True})))
    assert any(d.startswith("BillingMode") for d in broken(lambda p: p.update(BillingMode="PROVISIONED")))

    # And a code change the template has not followed: an index copying one attribute more.
    wider = copy.deepcopy(declaration)
    wider["table"]["GlobalSecondaryIndexes"][0]["Projection"]["NonKeyAttributes"].append("password_hash")
    assert any("Projection" in d for d in m.table_differences(template, wider))


# What a list read from GSI1 must never carry: credentials and lockout state.
SECRETS = {"password_hash", "token_hashes", "token_expiry", "login_failures", "login_failed_at"}


def test_gsi_projects_no_secrets(template, declaration):
    """Lists read users from GSI1. An index that copies password and token
    hashes puts them one Query away from every list function, and its copy
    lags the table: a revoked token hash would linger there."""
    for gsi in declaration["table"]["GlobalSecondaryIndexes"]:
        projected = gsi["Projection"]["NonKeyAttributes"]
        assert projected and not SECRETS & set(projected), SECRETS & set(projected)
        assert len(projected) == len(set(projected)), f"{gsi['IndexName']} lists an attribute twice"
    table = template["Resources"][m.table_id(template)]["Properties"]
    indexes = table["GlobalSecondaryIndexes"]
    for gsi in indexes:
        assert gsi["Projection"]["ProjectionType"] == "INCLUDE"
        assert not SECRETS & set(gsi["Projection"]["NonKeyAttributes"])
    # DynamoDB allows at most 100 projected attributes over all indexes of a table.
    assert sum(len(g["Projection"]["NonKeyAttributes"]) for g in indexes) <= 100


def test_table_is_protected(template):
    tid = m.table_id(template)
    table = template["Resources"][tid]
    props = table["Properties"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["DeletionProtectionEnabled"] == {"Ref": "TableDeletionProtection"}
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"


def test_parameters(template):
    params = template["Parameters"]
    assert params["ScimProfile"]["AllowedValues"] == ["odm", "rfc"]
    assert params["ScimProfile"]["Default"] == "odm"
    assert params["LogLevel"]["Default"] == "info"
    assert params["TableDeletionProtection"]["Default"] == "true"


def test_public_base_url_parameter(template):
    """Empty (the API Gateway domain of the request) or an https URL; never
    something that would turn links into another scheme or carry a query."""
    param = template["Parameters"]["PublicBaseUrl"]
    assert param["Type"] == "String" and param["Default"] == ""
    assert "custom domain" in param["Description"] and "empty" in param["Description"].lower()
    pattern = re.compile(param["AllowedPattern"])
    for good in ("", "https://users.example.com", "https://users.example.com/", "https://a.example.com:8443/dir"):
        assert pattern.fullmatch(good), good
    for bad in ("http://users.example.com", "users.example.com", "https://users.example.com?x=1",
                "https://users.example.com/#top", "javascript:alert(1)", "https://evil.example.com@x", " "):
        assert not pattern.fullmatch(bad), bad


def test_every_function_gets_the_public_base_url(template):
    """The functions read PUBLIC_BASE_URL (http::base_url); the template passes the
    parameter, never the HttpApi (the API references the functions: a cycle)."""
    for lid, resource in m.serverless_functions(template).items():
        env = m.effective_properties(template, resource)["Environment"]["Variables"]
        assert env["PUBLIC_BASE_URL"] == {"Ref": "PublicBaseUrl"}, lid
        routed = any(e.get("Type") == "HttpApi" for e in (resource["Properties"].get("Events") or {}).values())
        if routed:
            assert "HttpApi" not in repr(env), lid
        else:
            # No route, no cycle: the stream function learns the API's URL
            # (its SETs' issuer) from the template.
            assert env["API_URL"]["Fn::Sub"].startswith("https://${HttpApi}."), lid


def test_outputs(template):
    outputs = template["Outputs"]
    assert outputs["TableName"]["Value"] == {"Ref": m.table_id(template)}
    assert "${HttpApi}" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    assert outputs["ScimBaseUrl"]["Value"]["Fn::Sub"].endswith("/api/v1/scim")


def test_api_is_http_api_v2_with_throttling(template):
    api = template["Resources"]["HttpApi"]
    assert api["Type"] == "AWS::Serverless::HttpApi"
    settings = api["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] and settings["ThrottlingBurstLimit"]
    for resource in m.serverless_functions(template).values():
        for event in (resource["Properties"].get("Events") or {}).values():
            assert event["Type"] == "HttpApi"
            assert event["Properties"]["ApiId"] == {"Ref": "HttpApi"}
            assert event["Properties"].get("PayloadFormatVersion") == "2.0"


# What the change-event functions read besides what every function does: the
# secret their signing key is derived from (read from Secrets Manager at start,
# never put in the environment), the bus, and the API's URL for SETs' issuer.
EXTRA_ENV = {
    "events-publish": {
        "API_URL": {"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"},
        "SET_SIGNING_SECRET_ARN": {"Ref": "SetSigningSecret"},
        "EVENT_BUS_NAME": {"Ref": "EventBusName"},
    },
    "events-jwks": {"SET_SIGNING_SECRET_ARN": {"Ref": "SetSigningSecret"}},
}


@pytest.mark.parametrize("function", sorted(m.function_packages()))
def test_function_is_a_small_arm64_rust_lambda(template, function):
    (logical_id, resource), = [(lid, r) for lid, r in m.serverless_functions(template).items()
                               if m.binary_of(r) == function]
    assert resource["Metadata"]["BuildMethod"] == "rust-cargolambda"
    props = m.effective_properties(template, resource)
    assert props["Runtime"] == "provided.al2023"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "bootstrap"
    assert 128 <= props["MemorySize"] <= 256
    assert props["Timeout"] <= 29, "API Gateway gives up after 30 s"
    assert (m.ROOT / "infra" / props["CodeUri"] / "Cargo.toml").resolve() == m.CARGO_TOML
    env = props["Environment"]["Variables"]
    assert env == {"TABLE_NAME": {"Ref": m.table_id(template)}, "SCIM_PROFILE": {"Ref": "ScimProfile"},
                   "RUST_LOG": {"Ref": "LogLevel"}, "PUBLIC_BASE_URL": {"Ref": "PublicBaseUrl"},
                   # Generated by Secrets Manager, one value for every instance.
                   "CURSOR_SECRET": {"Fn::Sub": "{{resolve:secretsmanager:${CursorSecret}:SecretString}}"},
                   **EXTRA_ENV.get(function, {})}
    assert template["Resources"]["CursorSecret"]["Type"] == "AWS::SecretsManager::Secret"
    logging = props["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    group = template["Resources"][logging["LogGroup"]["Ref"]]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert group["Properties"]["LogGroupName"]["Fn::Sub"].endswith("/" + function)


def test_the_stream_reaches_events_publish_with_partial_failures_and_a_dead_letter_queue(template):
    assert not m.event_mapping_problems(template)
    resources = template["Resources"]
    assert resources["SetSigningSecret"]["Type"] == "AWS::SecretsManager::Secret"
    assert resources["SetSigningSecret"]["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    # The bus is optional: made only when EventBusName is set.
    assert resources["EventBus"]["Condition"] == "HasEventBus"
    assert template["Parameters"]["EventBusName"]["Default"] == ""


def test_mapping_check_detects_broken_copies(template):
    def broken(change):
        copied = copy.deepcopy(template)
        change(copied["Resources"])
        return m.event_mapping_problems(copied)

    mapping = "EventsPublishMapping"
    assert broken(lambda r: r[mapping]["Properties"].pop("FunctionResponseTypes"))
    assert broken(lambda r: r[mapping]["Properties"].update(BisectBatchOnFunctionError=False))
    assert broken(lambda r: r[mapping]["Properties"].update(MaximumRetryAttempts=-1))
    assert broken(lambda r: r[mapping]["Properties"].pop("DestinationConfig"))
    assert broken(lambda r: r[mapping]["Properties"].update(ParallelizationFactor=4))
    assert broken(lambda r: r[m.table_id(template)]["Properties"].update(
        StreamSpecification={"StreamViewType": "KEYS_ONLY"}))
    assert broken(lambda r: r.pop(mapping))
