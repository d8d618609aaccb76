"""Per-function IAM: exactly the DynamoDB actions each function's code performs.

"Performs" is derived from the code, not from a table kept by hand: each
functions/<op>/src/main.rs names its handler; the handler's call graph in the
views and auth.rs gives the store methods it calls; the store's call graph gives
the SDK calls and transaction items (Put/Update/Delete/ConditionCheck) behind
each (see infra_model.CodeModel). Branches are all counted (the SCIM profile is a
deployment parameter), so a role may hold an action one profile never uses.

Every write is confined to the partition keys its code writes
(`dynamodb:LeadingKeys`), also derived from the code: the key fns of keys.rs
(`keys::user` -> `USER#*`, `keys::count_block` -> `COUNTS`, ...)
that each writing store method reaches. A role that updates users cannot touch
an org, and only the SCIM Groups create and delete can write an `ORGID#` item.
(IAM authorises each item of a TransactWriteItems by its own action and key.)

The only writes a read-only function makes are Basic auth's (the store methods
auth.rs calls): the `last_login` refresh (`Store::touch_last_login`, at most
hourly per user, SPEC §1) and the failed-login count on the username's claim
(store/logins.rs). They are granted, not dropped: refusing them would turn a
stale Basic login into a 500 and switch the lockout off. But only under a
condition: UpdateItem of exactly the attributes those updates name (in their
update and condition expressions: IAM counts both) on `USER#…` resp.
`USERNAME#…` items, returning nothing — such a role still cannot change a
name, a group, a claim's owner or a token.
"""

import copy
import re

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


READ_ONLY = {"users-list", "users-self", "users-retrieve", "users-fallback", "scim-users-list",
             "scim-users-search", "scim-users-get", "scim-groups-list", "scim-groups-search",
             "scim-groups-get", "scim-discovery", "scim-fallback"}
# What Basic auth may write, as the spec says it (SPEC §1, issue 8), not as derived.
LAST_LOGIN = m.Scope(frozenset({"USER#*"}), frozenset({"pk", "sk", "last_login"}), True)
LOGIN_FAILURES = m.Scope(frozenset({"USERNAME#*"}),
                         frozenset({"pk", "sk", "login_failures", "login_failed_at", "expires_at",
                                    "user_id"}), True)


def by_binary(template):
    return {m.binary_of(r): r for r in m.serverless_functions(template).values()}


def test_read_functions_cannot_write_beyond_authentication(template):
    for function in READ_ONLY:
        grants, _ = m.granted(template, by_binary(template)[function])
        writes = {(a, r, c) for a, r, c in grants if a in m.WRITE_ACTIONS}
        assert writes == {("dynamodb:UpdateItem", "table", LAST_LOGIN),
                          ("dynamodb:UpdateItem", "table", LOGIN_FAILURES)}, (function, writes)


def test_authentication_writes_are_what_the_spec_allows(model):
    """The derivation reads store/users.rs and store/logins.rs as the spec says
    they behave: last_login on the user item; the failure count, its time and
    (for a name nobody holds) the TTL on the username claim, conditioned on
    whether `user_id` exists."""
    scopes, problems = model.narrow_scopes()
    assert not problems, problems
    assert scopes.pop("touch_last_login") == LAST_LOGIN
    assert scopes, "auth.rs records no login failures"
    for method, scope in scopes.items():
        assert scope == LOGIN_FAILURES, (method, scope)
    # IAM cannot tell an attribute a condition tests from one the update
    # writes: user_id is granted because these updates test it. They must
    # never assign or remove it (that would re-point a name to another user).
    for method in scopes:
        for path, fn in model.write_graph(method, frozenset()):
            for literal in re.findall(r'"((?:[^"\\]|\\.)*)"', model.store_files[path][fn]):
                assigned = re.findall(r"(?<![<>!=])\b(\w+)\s*=(?!=)", literal)
                removed = " ".join(re.findall(r"\bREMOVE\b(.*)", literal))
                assert "user_id" not in assigned and "user_id" not in removed, (method, literal)


def test_every_write_grant_is_confined_to_partition_keys(template):
    """No statement anywhere in the template lets a role write an arbitrary item."""
    for lid, resource in m.serverless_functions(template).items():
        for keys in m.write_leading_keys(template, resource):
            assert keys, f"{lid}: a write grant without dynamodb:LeadingKeys"
            assert not any(k in ("*", "") or k.startswith("*") for k in keys), (lid, keys)


def test_each_writer_is_confined_to_the_keys_its_code_writes(template, model):
    """Each writer's own write statement names exactly the LeadingKeys derived
    from its handler (the authentication statements aside)."""
    narrow = {LAST_LOGIN.leading_keys, LOGIN_FAILURES.leading_keys}
    for function, (module, handler) in m.handlers().items():
        derived = model.handler_write_prefixes(module, handler, model.auth_writes())
        granted = m.write_leading_keys(template, by_binary(template)[function]) - narrow
        assert granted == ({derived} if derived else set()), (function, granted, sorted(derived))


def test_the_key_prefixes_of_keys_rs():
    prefixes = m.key_prefixes(m.read_sources()["store/keys.rs"])
    assert prefixes["user"] == {"USER#*"}
    assert prefixes["username_claim"] == {"USERNAME#*"}
    assert prefixes["count_block"] == {"COUNTS"}
    assert prefixes["user_id_counter"] == {"COUNTER"}
    assert prefixes["membership"] == prefixes["org"] == {"ORG#*"}
    assert prefixes["org_by_id"] == {"ORGID#*"}
    assert "user_order" not in prefixes and "create_table" not in prefixes
    with pytest.raises(ValueError, match="odd"):
        m.key_prefixes('pub fn odd(x: &str) -> (String, &\'static str) {\n    (prefix(x), "SK")\n}\n')


def test_the_code_analysis_finds_what_it_should(model):
    """Spot checks that the derivation reads the code as a person would."""
    handlers = m.handlers()
    # Query on the table: the user counts (partition COUNTS), which the
    # authentication read fetches alongside when a list asks for them.
    assert model.handler_actions(*handlers["users-self"], skip=model.auth_writes()) == {
        ("dynamodb:BatchGetItem", "table"), ("dynamodb:GetItem", "table"),
        ("dynamodb:Query", "table")}
    assert ("dynamodb:Query", "index/gsi1") in model.handler_actions(*handlers["scim-users-list"])
    assert {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"} <= {
        a for a, _ in model.handler_actions(*handlers["scim-users-create"])}
    assert "dynamodb:PutItem" not in {a for a, _ in model.handler_actions(*handlers["users-list"])}
    # A large delete cascade sheds tokens and memberships in steps that rewrite the user.
    assert "dynamodb:PutItem" in {a for a, _ in model.handler_actions(*handlers["users-destroy"])}

    skip = model.auth_writes()
    assert {"touch_last_login", "record_login_failure", "clear_login_failures"} <= skip
    keys = {f: model.handler_write_prefixes(*h, skip) for f, h in handlers.items()}
    # Deleting a user deletes its memberships (ORG#<slug>/MEMBER#<id>); nothing else touches orgs.
    assert "ORG#*" in keys["users-destroy"] and "ORG#*" in keys["scim-users-delete"]
    assert not any("ORG#*" in keys[f] for f in ("users-update", "scim-users-create",
                                                  "scim-users-replace", "scim-users-patch"))
    # Orgs are created and deleted by usersctl and SCIM Groups only (POST and
    # DELETE /Groups); deactivation and PATCH revoke tokens.
    assert {f for f, k in keys.items() if "ORGID#*" in k} == {"scim-groups-create", "scim-groups-delete"}
    assert "TOKEN#*" in keys["users-update"] and "TOKEN#*" in keys["scim-users-patch"]
    # A read of a key is not a write of it: the claim lookups of every handler stay out.
    assert model.write_prefixes("claim_owner") == frozenset()
    assert model.write_prefixes("update_user_with") == model.write_prefixes("update_user")
    assert keys["scim-users-create"] >= {"COUNTER", "COUNTS", "USER#*", "USERNAME#*", "EXTID#*"}
    # SCIM Groups (scim/groups.rs over store/groups.rs): the group record, its
    # claims and its org; members are written with their user items. The record
    # is reached through `group.to_item()`, the claims through `super::users::claim_key`.
    assert handlers["scim-groups-patch"] == ("scim::groups", "patch")
    for f in ("scim-groups-create", "scim-groups-replace", "scim-groups-patch", "scim-groups-delete"):
        assert keys[f] >= {"GROUPS", "GROUPNAME#*", "GROUPEXTID#*", "ORG#*", "USER#*"}, (f, keys[f])
        assert "TOKEN#*" not in keys[f], f
    assert "COUNTER" in keys["scim-groups-create"]
    assert not any(k.startswith(("GROUP", "ORG")) for f in ("users-update", "scim-users-create",
                                                           "scim-users-replace", "scim-users-patch")
                   for k in keys[f])
    assert model.write_prefixes("versioned_group_put") == {"GROUPS"}
    assert {"GROUPNAME#*", "GROUPEXTID#*"} <= model.write_prefixes("group_claim_put")


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


def _auth_statement(template, sid):
    statements = template["Resources"]["AuthenticatePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (statement,) = [st for st in statements if st.get("Sid") == sid]
    return statement


def _write_statement(template, logical_id):
    (statement,) = [st for policy in template["Resources"][logical_id]["Properties"]["Policies"]
                    if isinstance(policy, dict) and "Statement" in policy
                    for st in policy["Statement"] if "dynamodb:PutItem" in m._as_list(st["Action"])]
    return statement


def test_leading_keys_check_detects_broken_copies(template, model):
    """A writer granted one prefix more, one less, or no condition at all; an
    authentication write widened to another attribute or key, or narrowed."""
    assert not m.permission_differences(template, model)

    wider = copy.deepcopy(template)
    _write_statement(wider, "UsersUpdateFunction")["Condition"]["ForAllValues:StringLike"][
        "dynamodb:LeadingKeys"].append("ORG#*")
    diffs = m.permission_differences(wider, model)
    assert any(d.startswith("users-update: is granted dynamodb:PutItem") and "ORG#*" in d for d in diffs), diffs

    narrower = copy.deepcopy(template)
    _write_statement(narrower, "UsersDestroyFunction")["Condition"]["ForAllValues:StringLike"][
        "dynamodb:LeadingKeys"].remove("ORG#*")
    diffs = m.permission_differences(narrower, model)
    assert any(d.startswith("users-destroy: needs dynamodb:DeleteItem") for d in diffs), diffs

    unconfined = copy.deepcopy(template)
    del _write_statement(unconfined, "ScimUsersCreateFunction")["Condition"]
    diffs = m.permission_differences(unconfined, model)
    assert any(d.startswith("scim-users-create: is granted dynamodb:PutItem on table unconditioned")
               for d in diffs), diffs

    exotic = copy.deepcopy(template)
    _write_statement(exotic, "ScimUsersPatchFunction")["Condition"] = {
        "StringLike": {"dynamodb:LeadingKeys": ["USER#*"]}}
    diffs = m.permission_differences(exotic, model)
    assert any("a Condition this check cannot read" in d for d in diffs), diffs

    for sid, change in [("CountLoginFailures", lambda keys, attrs: attrs.append("password_hash")),
                        ("CountLoginFailures", lambda keys, attrs: attrs.remove("user_id")),
                        ("CountLoginFailures", lambda keys, attrs: keys.append("USER#*")),
                        ("RefreshLastLogin", lambda keys, attrs: attrs.append("is_superuser"))]:
        broken = copy.deepcopy(template)
        condition = _auth_statement(broken, sid)["Condition"]
        change(condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
               condition["ForAllValues:StringEquals"]["dynamodb:Attributes"])
        diffs = m.permission_differences(broken, model)
        assert any(d.startswith("users-list: is granted dynamodb:UpdateItem") for d in diffs), (sid, diffs)

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
    assert any(d.startswith("scim-users-list: needs dynamodb:PutItem") for d in diffs), diffs


def test_key_changes_in_the_code_are_detected(template):
    """A writer that starts writing another key shape, or an authentication
    write that starts touching another attribute, needs a grant the template
    does not have."""
    sources = m.read_sources()
    org_writing = dict(sources)
    org_writing["store/users.rs"] = sources["store/users.rs"].replace(
        "        for hash in dropped_tokens(&old, &new) {\n",
        "        let _org = keys::org_by_id(new.id);\n"
        "        for hash in dropped_tokens(&old, &new) {\n", 1)
    assert org_writing != sources
    diffs = m.permission_differences(template, m.CodeModel(org_writing))
    assert any(d.startswith("users-update: needs dynamodb:PutItem") and "ORGID#*" in d for d in diffs), diffs

    wider_login = dict(sources)
    wider_login["store/users.rs"] = sources["store/users.rs"].replace(
        '.update_expression("SET last_login = :t")',
        '.update_expression("SET last_login = :t, is_superuser = :t")', 1)
    assert wider_login != sources
    diffs = m.permission_differences(template, m.CodeModel(wider_login))
    assert any(d.startswith("users-self: needs dynamodb:UpdateItem") and "is_superuser" in d for d in diffs), diffs

    hijacking = dict(sources)
    hijacking["store/logins.rs"] = sources["store/logins.rs"].replace(
        '"REMOVE login_failures, login_failed_at"', '"REMOVE login_failures, login_failed_at, version"', 1)
    assert hijacking != sources
    diffs = m.permission_differences(template, m.CodeModel(hijacking))
    assert any(d.startswith("scim-discovery: needs dynamodb:UpdateItem") and "'version'" in d for d in diffs), diffs

    unreadable = dict(sources)
    unreadable["store/logins.rs"] = sources["store/logins.rs"].replace(
        'format!(", {} = :ttl", keys::TTL)', 'format!(", {} = :ttl", ttl_attribute())', 1)
    assert unreadable != sources
    diffs = m.permission_differences(template, m.CodeModel(unreadable))
    assert any("cannot fill" in d for d in diffs), diffs


def test_expressions_are_read_as_dynamodb_reads_them():
    names = {"#v": "version"}
    assert m.expression_attributes("SET last_login = :t", {}) == {"last_login"}
    assert m.expression_attributes(
        "SET n = if_not_exists(n, :zero) + :one, #v = :v REMOVE a.b, c[0] ADD d :x DELETE e :s", names) == {
        "n", "version", "a", "c", "d", "e"}
    assert m.expression_attributes(
        "attribute_exists(user_id) AND (attribute_not_exists(at) OR at <= :stale) AND size(g) > :z", {}) == {
        "user_id", "at", "g"}
    fragments, problems = m.expression_fragments(
        'let mut s = "a = :one".to_string(); s.push_str(&format!(", {} = :ttl", keys::TTL)); '
        'x.update_expression(format!("SET {s}")).condition_expression(c); v.expect("no lock here")',
        {"TTL": "expires_at"})
    assert not problems
    assert set().union(*(m.expression_attributes(f, {}) for f in fragments)) == {"a", "expires_at"}


def test_handlers_and_store_calls_are_read_through_paths_and_types():
    """`serve(a::b::f)` names a handler in module a::b; in the store, `super::m::f(`
    is a fn of store/m.rs, `value.f(` and `Type::f(` the fns of a store type's impl."""
    assert m.handler_of("runtime::serve(scim::patch).await") == ("scim", "patch")
    assert m.handler_of("runtime::serve(scim::groups::patch).await") == ("scim::groups", "patch")
    with pytest.raises(ValueError):
        m.handler_of("runtime::serve(patch).await")
    sources = m.read_sources()
    model = m.CodeModel(sources)
    assert ("store/groups.rs", "to_item") in model.type_methods
    assert ("store/users.rs", "claim_key") in model._callees(
        "store/groups.rs", "let (pk, sk) = super::users::claim_key(field, value);")
    assert ("store/groups.rs", "to_item") in model._callees("store/groups.rs", "put(group.to_item())")
    assert ("store/groups.rs", "from_item") in model._callees("store/groups.rs", "GroupRecord::from_item(x)")
    # Braces in strings do not end an impl block early.
    assert m.impl_fns('impl A {\n    fn a(&self) { let s = "}"; }\n    fn b(&self) {}\n}\nfn c() {}\n') == {
        "A": {"a", "b"}}


def test_a_missing_handler_is_reported(template, model):
    table = dict(m.handlers())
    table["scim-groups-get"] = ("scim::groups", "no_such_handler")
    diffs = m.permission_differences(template, model, table)
    assert any(d.startswith("scim-groups-get: handler scim::groups::no_such_handler not found") for d in diffs), diffs
    table["scim-groups-get"] = ("scim::unknown", "get")
    diffs = m.permission_differences(template, model, table)
    assert any("add the module to CodeModel.view_files" in d for d in diffs), diffs
