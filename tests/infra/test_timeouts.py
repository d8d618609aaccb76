"""Each function's Timeout in the template against the DynamoDB budget in the code.

A request waits on DynamoDB for at most store::REQUEST_BUDGET (shared/src/store/client.rs,
exported by `usersctl iam --json`), then answers 503. The function's Timeout must leave room for that answer, or Lambda kills the
request mid-way and the caller gets API Gateway's bare 500 instead; it must not be far
longer, or the budget stops meaning anything; and the HTTP API gives up after 30 s anyway.
"""

import copy

import pytest

import infra_model as m


@pytest.fixture(scope="module")
def template():
    return m.load_template()


@pytest.fixture(scope="module")
def budget():
    return m.request_budget_seconds(m.load_declaration())


@pytest.fixture(scope="module")
def budgets():
    return m.request_budgets(m.load_declaration())


def test_every_function_outlives_its_budget_by_a_little(template, budgets):
    timeouts = m.function_timeouts(template)
    assert set(timeouts) == set(m.function_packages().values()) == set(budgets)
    problems = m.timeout_problems(budgets, timeouts)
    assert not problems, "\n".join(problems)


def test_the_bulk_function_has_a_budget_and_timeout_of_its_own(template, budget, budgets):
    """POST /Bulk runs up to maxOperations operations: a longer budget than any other request,
    and a Timeout to match; the Globals' 10 s would kill it mid-bulk."""
    assert budgets["scim-bulk"] > budget
    assert all(b == budget for f, b in budgets.items() if f != "scim-bulk"), budgets
    short = copy.deepcopy(template)
    del m.serverless_functions(short)["ScimBulkFunction"]["Properties"]["Timeout"]
    problems = m.timeout_problems(budgets, m.function_timeouts(short))
    assert [p.split(":")[0] for p in problems] == ["scim-bulk"], problems


def test_timeout_check_detects_broken_copies(template, budget, budgets):
    """Deliberately broken copies of the template or the code must be reported."""
    short = copy.deepcopy(template)
    short["Globals"]["Function"]["Timeout"] = 5
    assert len(m.timeout_problems(budget, m.function_timeouts(short))) == len(m.function_timeouts(short))

    # A budget raised in the code without the template following.
    assert m.timeout_problems(29, m.function_timeouts(template))

    # A per-function Timeout overrides Globals: only that function is reported.
    one_long = copy.deepcopy(template)
    logical_id, resource = next((lid, r) for lid, r in sorted(m.serverless_functions(one_long).items())
                                if m.binary_of(r) != "scim-bulk")
    resource["Properties"]["Timeout"] = 29
    problems = m.timeout_problems(budgets, m.function_timeouts(one_long))
    assert problems and all(p.startswith(m.binary_of(resource) + ":") for p in problems), problems

    at_limit = copy.deepcopy(template)
    at_limit["Globals"]["Function"]["Timeout"] = m.HTTP_API_TIMEOUT
    assert any("integration limit" in p
               for p in m.timeout_problems(m.HTTP_API_TIMEOUT - 2, m.function_timeouts(at_limit)))

    unset = copy.deepcopy(template)
    del unset["Globals"]["Function"]["Timeout"]  # Lambda's default, 3 s
    assert m.timeout_problems(budget, m.function_timeouts(unset))
