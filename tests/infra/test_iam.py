"""Per-function IAM: exactly the DynamoDB actions each function's code performs.

"Performs" is derived from the code, not from a table kept by hand: each
functions/<op>/src/main.rs names its handler; the handler's call graph in the
views and auth.rs gives the store methods it calls; the store's call graph gives
the SDK calls and transaction items (Put/Update/Delete/ConditionCheck) behind
each (see infra_model.CodeModel). Branches are all counted (the SCIM profile is a
deployment parameter), so a role may hold an action one profile never uses.

The one write a read-only function makes is Basic auth's `last_login` refresh
(`Store::touch_last_login`, at most hourly per user, SPEC §1). It is granted, not
dropped: refusing it would turn every stale Basic login into a 500. But only
under a condition: UpdateItem of the `last_login` attribute of `USER#…` items,
returning nothing — such a role still cannot change a name, a group, a claim or
a token.
"""

import copy

import pytest

import infra_model as m


@pytest.fixture(scope="module")
def template():
    return m.load_template()


@pytest.fixture(scope="module")
def model():
    return m.CodeModel(m.read_sources())


def test_no_wildcards(template):
    problems = m.wildcard_problems(template)
    assert not problems, "\n".join(problems)


def test_each_role_grants_exactly_what_its_code_uses(template, model):
    diffs = m.permission_differences(template, model)
    assert not diffs, "\n".join(diffs)


def test_the_analysis_sees_every_store_call(model):
    problems = model.unattributed_store_calls(list(m.handlers().values()))
    assert not problems, "\n".join(problems)


def test_read_functions_cannot_write_beyond_last_login(template, model):
    read_only = {"users-list", "users-self", "users-retrieve", "users-fallback", "scim-users-list",
                 "scim-users-search", "scim-users-get", "scim-discovery", "scim-fallback"}
    by_binary = {m.binary_of(r): r for r in m.serverless_functions(template).values()}
    for function in read_only:
        grants, _ = m.granted(template, by_binary[function])
        writes = {(a, r, c) for a, r, c in grants if a in m.WRITE_ACTIONS}
        assert writes == {("dynamodb:UpdateItem", "table", "last_login")}, (function, writes)


def test_the_code_analysis_finds_what_it_should(model):
    """Spot checks that the derivation reads the code as a person would."""
    handlers = m.handlers()
    assert model.handler_actions(*handlers["users-self"], skip=frozenset({m.LAST_LOGIN})) == {
        ("dynamodb:BatchGetItem", "table"), ("dynamodb:GetItem", "table")}
    assert ("dynamodb:Query", "index/gsi1") in model.handler_actions(*handlers["scim-users-list"])
    assert {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"} <= {
        a for a, _ in model.handler_actions(*handlers["scim-users-create"])}
    assert "dynamodb:PutItem" not in {a for a, _ in model.handler_actions(*handlers["users-list"])}
    # A large delete cascade sheds tokens and memberships in steps that rewrite the user.
    assert "dynamodb:PutItem" in {a for a, _ in model.handler_actions(*handlers["users-destroy"])}


# ---------------------------------------------------------------- the test can fail


def _add_statement(template, logical_id, statement):
    broken = copy.deepcopy(template)
    broken["Resources"][logical_id]["Properties"]["Policies"].append({"Statement": [statement]})
    return broken


TABLE_ARN = {"Fn::GetAtt": ["UsersTable", "Arn"]}


def test_permission_check_detects_broken_copies(template, model):
    extra_write = _add_statement(template, "UsersSelfFunction",
                                 {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE_ARN})
    assert m.permission_differences(extra_write, model)

    wildcard = _add_statement(template, "UsersListFunction",
                              {"Effect": "Allow", "Action": "dynamodb:*", "Resource": TABLE_ARN})
    assert m.wildcard_problems(wildcard)
    assert m.permission_differences(wildcard, model)

    missing = copy.deepcopy(template)
    missing["Resources"]["UsersListFunction"]["Properties"]["Policies"].pop()  # the Query grant
    assert m.permission_differences(missing, model)

    loose = copy.deepcopy(template)
    statements = loose["Resources"]["AuthenticatePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    del statements[1]["Condition"]["ForAllValues:StringEquals"]  # last_login no longer enforced
    assert m.permission_differences(loose, model)

    sam_template = copy.deepcopy(template)
    sam_template["Resources"]["UsersSelfFunction"]["Properties"]["Policies"].append(
        {"DynamoDBCrudPolicy": {"TableName": {"Ref": "UsersTable"}}})
    assert m.permission_differences(sam_template, model)


def test_code_changes_are_detected(template):
    """A handler that starts deleting, or a store method that starts writing,
    needs a grant the template does not have."""
    sources = m.read_sources()
    deleting = dict(sources)
    deleting["admin_api/views.rs"] = sources["admin_api/views.rs"].replace(
        "async fn self_user(ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {",
        "async fn self_user(ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {\n"
        "    ctx.store.delete_user(&u).await?;", 1)
    assert deleting != sources
    assert any(d.startswith("users-self: needs") for d in m.permission_differences(template, m.CodeModel(deleting)))

    writing = dict(sources)
    writing["store/users.rs"] = sources["store/users.rs"].replace(
        "    pub async fn get_user(&self, id: u64) -> Result<Option<User>> {",
        "    pub async fn get_user(&self, id: u64) -> Result<Option<User>> {\n"
        "        self.client().put_item().send().await?;", 1)
    assert writing != sources
    diffs = m.permission_differences(template, m.CodeModel(writing))
    assert any(d.startswith("scim-users-list: needs ('dynamodb:PutItem'") for d in diffs), diffs
