"""The template's table, functions, parameters and outputs."""

import re

import pytest

import infra_model as m

KEYS_RS = m.SHARED_SRC / "store" / "keys.rs"


@pytest.fixture(scope="module")
def template():
    return m.load_template()


def key_schema_constants():
    text = KEYS_RS.read_text()
    return dict(re.findall(r'pub const (\w+): &str = "([^"]*)";', text)), text


def test_table_has_the_key_schema_of_keys_rs(template):
    """keys.rs is the source of truth (`usersctl table create`, DynamoDB Local)."""
    consts, text = key_schema_constants()
    # What create_table builds: pk/sk, gsi1 on gsi1pk/gsi1sk projecting
    # GSI1_PROJECTED, every key a string, on-demand, TTL on expires_at.
    flat = re.sub(r"\s+", "", text)  # rustfmt may break a chain anywhere
    for fragment in ("ScalarAttributeType::S", "ProjectionType::Include",
                     "BillingMode::PayPerRequest", ".attribute_name(TTL)", "INDEXES.iter()",
                     ".key_schema(key(GSI1_PK,KeyType::Hash))", ".key_schema(key(GSI1_SK,KeyType::Range))"):
        assert fragment in flat, f"keys.rs::create_table changed ({fragment}); update the template and this test"
    table = template["Resources"][m.table_id(template)]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        (consts[k], "S") for k in ("PK", "SK", "GSI1_PK", "GSI1_SK")}
    assert table["KeySchema"] == [{"AttributeName": consts["PK"], "KeyType": "HASH"},
                                  {"AttributeName": consts["SK"], "KeyType": "RANGE"}]
    # keys::INDEXES: gsi1 with GSI1_PROJECTED and the search index with
    # SEARCH_PROJECTED, both on gsi1pk/gsi1sk.
    assert re.search(r"pub const INDEXES: .*?\(GSI1, GSI1_PROJECTED\), \(SEARCH_INDEX, SEARCH_PROJECTED\)\]",
                     text, re.S), "keys::INDEXES changed; update the template and this test"
    wanted = {consts["GSI1"]: m.gsi_projection(text),
              consts["SEARCH_INDEX"]: m.gsi_projection(text, "SEARCH_PROJECTED")}
    indexes = table["GlobalSecondaryIndexes"]
    assert sorted(g["IndexName"] for g in indexes) == sorted(wanted)
    for gsi in indexes:
        assert gsi["KeySchema"] == [{"AttributeName": consts["GSI1_PK"], "KeyType": "HASH"},
                                    {"AttributeName": consts["GSI1_SK"], "KeyType": "RANGE"}]
        assert gsi["Projection"] == {"ProjectionType": "INCLUDE",
                                     "NonKeyAttributes": wanted[gsi["IndexName"]]}
    assert table["TimeToLiveSpecification"] == {"AttributeName": consts["TTL"], "Enabled": True}


# What a list read from GSI1 must never carry: credentials and lockout state.
SECRETS = {"password_hash", "token_hashes", "token_expiry", "login_failures", "login_failed_at"}


def test_gsi_projects_no_secrets(template):
    """Lists read users from GSI1. An index that copies password and token
    hashes puts them one Query away from every list function, and its copy
    lags the table: a revoked token hash would linger there."""
    for const in ("GSI1_PROJECTED", "SEARCH_PROJECTED"):
        projected = m.gsi_projection(KEYS_RS.read_text(), const)
        assert projected and not SECRETS & set(projected), SECRETS & set(projected)
        assert len(projected) == len(set(projected)), f"{const} lists an attribute twice"
    table = template["Resources"][m.table_id(template)]["Properties"]
    indexes = table["GlobalSecondaryIndexes"]
    for gsi in indexes:
        assert gsi["Projection"]["ProjectionType"] == "INCLUDE"
        assert not SECRETS & set(gsi["Projection"]["NonKeyAttributes"])
    # DynamoDB allows at most 100 projected attributes over all indexes of a table.
    assert sum(len(g["Projection"]["NonKeyAttributes"]) for g in indexes) <= 100


def test_gsi_projection_follows_keys_rs():
    """The comparison reads GSI1_PROJECTED, not a copy of it."""
    text = KEYS_RS.read_text()
    changed = text.replace('    "idp_owned",\n', '    "idp_owned",\n    "password_hash",\n', 1)
    assert changed != text and "password_hash" in m.gsi_projection(changed)
    with pytest.raises(ValueError):
        m.gsi_projection(text.replace("GSI1_PROJECTED", "GSI1_COPIED"))


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
    """shared/src/http.rs::base_url reads PUBLIC_BASE_URL; the template passes the
    parameter, never the HttpApi (the API references the functions: a cycle)."""
    assert "PUBLIC_BASE_URL" in (m.SHARED_SRC / "http.rs").read_text()
    for lid, resource in m.serverless_functions(template).items():
        env = m.effective_properties(template, resource)["Environment"]["Variables"]
        assert env["PUBLIC_BASE_URL"] == {"Ref": "PublicBaseUrl"}, lid
        assert "HttpApi" not in repr(env), lid


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
        for event in resource["Properties"]["Events"].values():
            assert event["Type"] == "HttpApi"
            assert event["Properties"]["ApiId"] == {"Ref": "HttpApi"}
            assert event["Properties"].get("PayloadFormatVersion") == "2.0"


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
                   "CURSOR_SECRET": {"Fn::Sub": "{{resolve:secretsmanager:${CursorSecret}:SecretString}}"}}
    assert template["Resources"]["CursorSecret"]["Type"] == "AWS::SecretsManager::Secret"
    logging = props["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    group = template["Resources"][logging["LogGroup"]["Ref"]]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert group["Properties"]["LogGroupName"]["Fn::Sub"].endswith("/" + function)
