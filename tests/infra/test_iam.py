"""Per-function IAM: each role grants exactly what its function declares.

The declaration is Rust code (shared/src/store/permissions.rs): per function,
the DynamoDB actions, on the table or an index, confined to the partitions its
writes touch (`dynamodb:LeadingKeys`, patterns built from the key fns of
store/table.rs: `table::user` -> `USER#*`, `table::count_block` -> `COUNTS`)
and, for the writes of authentication, to the attributes they name. The
integration tests hold the code to it (tests/permissions.rs: every handler runs
with a DynamoDB client that fails any call outside its declaration); this test
holds the template to it, through `usersctl iam --json`, so the two together
say that each role allows what its function does, and no more.

The only writes a read-only function makes are Basic auth's: the `last_login`
refresh (at most hourly per user) and the failed-login count on the username's
claim. They are granted, not dropped: refusing them would turn a stale Basic
login into a 500 and switch the lockout off. But only under a condition:
UpdateItem of exactly the attributes those updates name (in their update and
condition expressions: IAM counts both) on `USER#…` resp. `USERNAME#…` items,
returning nothing — such a role still cannot change a name, a group, a
claim's owner or a token.
"""

import copy

import pytest

import infra_model as m


@pytest.fixture(scope="module")
def template():
    return m.load_template()


@pytest.fixture(scope="module")
def declaration():
    return m.load_declaration()


def by_binary(template):
    return {m.binary_of(r): r for r in m.serverless_functions(template).values()}


def test_no_wildcards(template):
    problems = m.wildcard_problems(template)
    assert not problems, "\n".join(problems)


def test_each_role_grants_exactly_what_its_function_declares(template, declaration):
    diffs = m.permission_differences(template, declaration)
    assert not diffs, "\n".join(diffs)


def test_every_function_is_declared(template, declaration):
    assert set(declaration["functions"]) == set(m.function_packages().values()) == set(by_binary(template))


READ_ONLY = {"users-list", "users-self", "users-retrieve", "users-fallback", "organizations-list",
             "organizations-retrieve", "memberships-list", "memberships-retrieve", "scim-users-list",
             "scim-users-search", "scim-users-get", "scim-groups-list", "scim-groups-search",
             "scim-groups-get", "scim-me-get", "scim-discovery", "scim-fallback"}
# What Basic auth may write, written out here rather than taken from either side.
LAST_LOGIN = m.Scope(frozenset({"USER#*"}), frozenset({"pk", "sk", "last_login"}), True)
LOGIN_FAILURES = m.Scope(frozenset({"USERNAME#*"}),
                         frozenset({"pk", "sk", "login_failures", "login_failed_at", "expires_at",
                                    "user_id"}), True)
AUTH_WRITES = {("dynamodb:UpdateItem", "table", LAST_LOGIN),
               ("dynamodb:UpdateItem", "table", LOGIN_FAILURES)}


def test_read_functions_cannot_write_beyond_authentication(template, declaration):
    declared = m.declared_grants(declaration)
    for function in READ_ONLY:
        grants, _ = m.granted(template, by_binary(template)[function])
        writes = {(a, r, c) for a, r, c in grants if a in m.WRITE_ACTIONS}
        assert writes == AUTH_WRITES, (function, writes)
        assert {g for g in declared[function] if g[0] in m.WRITE_ACTIONS} == AUTH_WRITES, function


def test_every_write_grant_is_confined_to_partition_keys(template):
    """No statement anywhere in the template lets a role write an arbitrary item."""
    for lid, resource in m.serverless_functions(template).items():
        for keys in m.write_leading_keys(template, resource):
            assert keys, f"{lid}: a write grant without dynamodb:LeadingKeys"
            assert not any(k in ("*", "") or k.startswith("*") for k in keys), (lid, keys)


def test_the_declaration_confines_writers_as_a_reviewer_expects(declaration):
    """Spot checks of the declaration itself: which kinds of item each writer may touch."""
    declared = m.declared_grants(declaration)
    keys = {f: frozenset().union(*(s.leading_keys for a, _, s in grants
                                   if a in m.WRITE_ACTIONS and s.attributes is None))
            for f, grants in declared.items()}
    # Deleting a user deletes its memberships (ORG#<slug>/MEMBER#<id>); a user created under a
    # tenant base starts as a member of its org; no other user write touches orgs.
    assert "ORG#*" in keys["users-destroy"] and "ORG#*" in keys["scim-users-delete"]
    assert "ORG#*" in keys["scim-users-create"]
    assert not any("ORG#*" in keys[f] for f in ("users-update",
                                                  "scim-users-replace", "scim-users-patch",
                                                  "scim-me-replace", "scim-me-patch"))
    # Orgs are created and deleted by SCIM Groups only (POST and DELETE /Groups, and a bulk of them).
    assert {f for f, k in keys.items() if "ORGID#*" in k} == {"scim-groups-create", "scim-groups-delete",
                                                               "scim-bulk"}
    # Deactivation revokes tokens; groups never touch them, but deleting an org (a group)
    # deletes its tenant tokens and frees its domains.
    assert "TOKEN#*" in keys["users-update"] and "TOKEN#*" in keys["scim-users-patch"]
    for f in ("scim-groups-create", "scim-groups-replace", "scim-groups-patch", "scim-groups-delete"):
        assert keys[f] >= {"GROUPS", "GROUPNAME#*", "GROUPEXTID#*", "ORG#*", "USER#*"}, (f, keys[f])
        assert ("TOKEN#*" in keys[f]) == (f == "scim-groups-delete"), f
    assert {f for f, k in keys.items() if "DOMAIN#*" in k} == {"scim-groups-delete", "scim-bulk"}
    assert {f for f, k in keys.items() if "COUNTER" in k} == {"scim-users-create", "scim-groups-create",
                                                               "scim-bulk"}
    # /Me writes what a PATCH of a user writes, on the caller; a bulk what any SCIM write does.
    assert keys["scim-me-patch"] == keys["scim-me-replace"] == keys["scim-users-patch"]
    assert keys["scim-bulk"] == frozenset().union(*(keys[f] for f in keys if f.startswith("scim-")
                                                    and f not in ("scim-bulk",)))
    # Only the lists query an index; only the admin list the search index.
    indexes = {f: {r for _, r, _ in grants if r.startswith("index/")} for f, grants in declared.items()}
    assert {f: i for f, i in indexes.items() if i} == {
        "users-list": {"index/gsi1", "index/search"},
        "scim-users-list": {"index/gsi1", "index/modified", "index/tenant"},
        "scim-users-search": {"index/gsi1", "index/modified", "index/tenant"}}


# ---------------------------------------------------------------- the check can fail


def _add_statement(template, logical_id, statement):
    broken = copy.deepcopy(template)
    broken["Resources"][logical_id]["Properties"]["Policies"].append({"Statement": [statement]})
    return broken


TABLE_ARN = {"Fn::GetAtt": ["UsersTable", "Arn"]}


def test_permission_check_detects_broken_templates(template, declaration):
    extra_write = _add_statement(template, "UsersSelfFunction",
                                 {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE_ARN})
    diffs = m.permission_differences(extra_write, declaration)
    assert any(d.startswith("users-self: is granted dynamodb:PutItem") for d in diffs), diffs

    wildcard = _add_statement(template, "UsersListFunction",
                              {"Effect": "Allow", "Action": "dynamodb:*", "Resource": TABLE_ARN})
    assert m.wildcard_problems(wildcard)
    assert m.permission_differences(wildcard, declaration)

    missing = copy.deepcopy(template)
    missing["Resources"]["UsersListFunction"]["Properties"]["Policies"].pop()  # the index Query grant
    diffs = m.permission_differences(missing, declaration)
    assert any(d.startswith("users-list: is declared dynamodb:Query on index/gsi1") for d in diffs), diffs

    loose = copy.deepcopy(template)
    statements = loose["Resources"]["AuthenticatePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    del statements[1]["Condition"]["ForAllValues:StringEquals"]  # last_login no longer enforced
    assert m.permission_differences(loose, declaration)

    removed = copy.deepcopy(template)
    del removed["Resources"]["ScimGroupsGetFunction"]
    diffs = m.permission_differences(removed, declaration)
    assert "scim-groups-get: declared in store::permissions but not in the template" in diffs, diffs


def _auth_statement(template, sid):
    statements = template["Resources"]["AuthenticatePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (statement,) = [st for st in statements if st.get("Sid") == sid]
    return statement


def _write_statement(template, logical_id):
    (statement,) = [st for policy in template["Resources"][logical_id]["Properties"]["Policies"]
                    if isinstance(policy, dict) and "Statement" in policy
                    for st in policy["Statement"] if "dynamodb:PutItem" in m._as_list(st["Action"])]
    return statement


def test_leading_keys_check_detects_broken_templates(template, declaration):
    """A writer granted one prefix more, one less, or no condition at all; an
    authentication write widened to another attribute or key, or narrowed."""
    assert not m.permission_differences(template, declaration)

    wider = copy.deepcopy(template)
    _write_statement(wider, "UsersUpdateFunction")["Condition"]["ForAllValues:StringLike"][
        "dynamodb:LeadingKeys"].append("ORG#*")
    diffs = m.permission_differences(wider, declaration)
    assert any(d.startswith("users-update: is granted dynamodb:PutItem") and "ORG#*" in d for d in diffs), diffs

    narrower = copy.deepcopy(template)
    _write_statement(narrower, "UsersDestroyFunction")["Condition"]["ForAllValues:StringLike"][
        "dynamodb:LeadingKeys"].remove("ORG#*")
    diffs = m.permission_differences(narrower, declaration)
    assert any(d.startswith("users-destroy: is declared dynamodb:DeleteItem") for d in diffs), diffs

    wrong_prefix = copy.deepcopy(template)
    keys = _write_statement(wrong_prefix, "ScimGroupsPatchFunction")["Condition"]["ForAllValues:StringLike"][
        "dynamodb:LeadingKeys"]
    keys[keys.index("GROUPS")] = "GROUP#*"
    diffs = m.permission_differences(wrong_prefix, declaration)
    assert any(d.startswith("scim-groups-patch: is declared dynamodb:PutItem") and "'GROUPS'" in d
               for d in diffs), diffs

    unconfined = copy.deepcopy(template)
    del _write_statement(unconfined, "ScimUsersCreateFunction")["Condition"]
    diffs = m.permission_differences(unconfined, declaration)
    assert any(d.startswith("scim-users-create: is granted dynamodb:PutItem on table unconditioned")
               for d in diffs), diffs

    exotic = copy.deepcopy(template)
    _write_statement(exotic, "ScimUsersPatchFunction")["Condition"] = {
        "StringLike": {"dynamodb:LeadingKeys": ["USER#*"]}}
    diffs = m.permission_differences(exotic, declaration)
    assert any("a Condition this check cannot read" in d for d in diffs), diffs

    for sid, change in [("CountLoginFailures", lambda keys, attrs: attrs.append("password_hash")),
                        ("CountLoginFailures", lambda keys, attrs: attrs.remove("user_id")),
                        ("CountLoginFailures", lambda keys, attrs: keys.append("USER#*")),
                        ("RefreshLastLogin", lambda keys, attrs: attrs.append("is_superuser"))]:
        broken = copy.deepcopy(template)
        condition = _auth_statement(broken, sid)["Condition"]
        change(condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
               condition["ForAllValues:StringEquals"]["dynamodb:Attributes"])
        diffs = m.permission_differences(broken, declaration)
        assert any(d.startswith("users-list: is granted dynamodb:UpdateItem") for d in diffs), (sid, diffs)

    sam_template = copy.deepcopy(template)
    sam_template["Resources"]["UsersSelfFunction"]["Properties"]["Policies"].append(
        {"DynamoDBCrudPolicy": {"TableName": {"Ref": "UsersTable"}}})
    assert m.permission_differences(sam_template, declaration)


def _function(declaration, name):
    return declaration["functions"][name]


def test_declaration_changes_are_detected(template, declaration):
    """A function that declares one action more or one less, another partition, or a
    wider authentication write needs a template that matches it."""
    deleting = copy.deepcopy(declaration)
    _function(deleting, "users-self").append({"actions": ["dynamodb:DeleteItem"], "resource": "table",
                                               "leading_keys": ["USER#*"], "attributes": None,
                                               "return_values": None})
    diffs = m.permission_differences(template, deleting)
    assert any(d.startswith("users-self: is declared dynamodb:DeleteItem") for d in diffs), diffs

    no_put = copy.deepcopy(declaration)
    (writes,) = [g for g in _function(no_put, "scim-users-patch") if "dynamodb:PutItem" in g["actions"]]
    writes["actions"].remove("dynamodb:PutItem")
    diffs = m.permission_differences(template, no_put)
    assert any(d.startswith("scim-users-patch: is granted dynamodb:PutItem") for d in diffs), diffs

    org_writing = copy.deepcopy(declaration)
    (writes,) = [g for g in _function(org_writing, "users-update") if "dynamodb:PutItem" in g["actions"]]
    writes["leading_keys"].append("ORGID#*")
    diffs = m.permission_differences(template, org_writing)
    assert any(d.startswith("users-update: is declared dynamodb:PutItem") and "ORGID#*" in d for d in diffs), diffs

    wider_login = copy.deepcopy(declaration)
    (refresh,) = [g for g in _function(wider_login, "scim-discovery") if g["attributes"]
                  and "last_login" in g["attributes"]]
    refresh["attributes"].append("is_superuser")
    diffs = m.permission_differences(template, wider_login)
    assert any(d.startswith("scim-discovery: is declared dynamodb:UpdateItem") and "is_superuser" in d
               for d in diffs), diffs

    unknown = copy.deepcopy(declaration)
    unknown["functions"]["users-export"] = _function(unknown, "users-list")
    diffs = m.permission_differences(template, unknown)
    assert "users-export: declared in store::permissions but not in the template" in diffs, diffs

    undeclared = copy.deepcopy(declaration)
    del undeclared["functions"]["scim-fallback"]
    diffs = m.permission_differences(template, undeclared)
    assert "scim-fallback: in the template but not declared in store::permissions" in diffs, diffs
