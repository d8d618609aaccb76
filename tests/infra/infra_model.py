"""What tests/infra reads: the SAM template, the cargo-lambda router, the function
packages, the OpenAPI document (docs/openapi.yaml), and what the code declares it needs from its deployment (`usersctl iam
--json`: each function's DynamoDB permissions, the table's schema, the request
budget). No Rust source is read: the code speaks for itself through that export.

Everything here is a pure function of its inputs, so the tests can feed it
deliberately broken copies and check that the comparisons notice.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
CARGO_TOML = ROOT / "Cargo.toml"
OPENAPI = ROOT / "docs" / "openapi.yaml"
FUNCTIONS = ROOT / "functions"

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
ANY = "ANY"


# ---------------------------------------------------------------- loading


def load_template(text: str | None = None) -> dict:
    """The template with intrinsic tags as dicts (`!Ref X` -> {"Ref": "X"})."""
    template, matches = decode_str(TEMPLATE.read_text() if text is None else text)
    if matches:
        raise ValueError(f"template does not parse: {matches}")
    return template


def load_router(text: str | None = None) -> dict:
    cargo = tomllib.loads(CARGO_TOML.read_text() if text is None else text)
    return cargo["workspace"]["metadata"]["lambda"]["watch"]["router"]


def function_packages() -> dict[str, str]:
    """functions/<dir> -> the package (and binary) name in its Cargo.toml."""
    packages = {}
    for manifest in sorted(FUNCTIONS.glob("*/Cargo.toml")):
        packages[manifest.parent.name] = tomllib.loads(manifest.read_text())["package"]["name"]
    return packages


def serverless_functions(template: dict) -> dict[str, dict]:
    """Logical id -> resource, for every AWS::Serverless::Function."""
    return {
        lid: res
        for lid, res in template["Resources"].items()
        if res.get("Type") == "AWS::Serverless::Function"
    }


def binary_of(resource: dict) -> str | None:
    return (resource.get("Metadata") or {}).get("BuildProperties", {}).get("Binary")


def effective_properties(template: dict, resource: dict) -> dict:
    """Function properties with SAM Globals applied: maps merge at every depth
    (`Environment.Variables` of both), the function wins."""
    def merge(base: dict, over: dict) -> dict:
        merged = dict(base)
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict) and not _intrinsic(value):
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = value
        return merged
    return merge(template.get("Globals", {}).get("Function", {}), resource.get("Properties", {}))


def _intrinsic(value: dict) -> bool:
    """`{"Ref": …}`, `{"Fn::Sub": …}`: a value, not a map to merge."""
    return len(value) == 1 and next(iter(value)) in ("Ref", "Condition") or \
        any(k.startswith("Fn::") for k in value)


# ---------------------------------------------------------------- routes

# A route is (method, path, function), method one of METHODS or ANY, path in one
# common syntax: literal segments, "{name}" (one segment), "{name+}" (greedy, last).


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str


def router_routes(router: dict) -> list[Route]:
    """The cargo-lambda router: a path maps to a function (every method) or to a
    list of {method, function}. matchit's catch-all "{*rest}" becomes "{rest+}"."""
    routes = []
    for path, target in router.items():
        path = re.sub(r"\{\*(\w+)\}", r"{\1+}", path)
        if isinstance(target, str):
            routes.append(Route(ANY, path, target))
        else:
            for entry in target:
                routes.append(Route(entry["method"].upper(), path, entry["function"]))
    return routes


def template_routes(template: dict) -> list[Route]:
    """Every HttpApi event of every function, named by the function's binary."""
    routes = []
    for resource in serverless_functions(template).values():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") != "HttpApi":
                continue
            props = event.get("Properties", {})
            method = str(props.get("Method", ANY)).upper()
            routes.append(Route(method, props["Path"], binary_of(resource)))
    return routes


def _segments(path: str) -> list[str]:
    return path.strip("/").split("/")


def _match(route_path: str, request_path: str) -> tuple | None:
    """How specifically `route_path` matches: a tuple per segment, 2 literal,
    1 parameter, 0 greedy; None when it does not match. Bigger is more specific,
    compared left to right: the order both matchit (static > parameter >
    catch-all, with backtracking) and API Gateway (full match > path variable >
    greedy variable) choose routes in."""
    pattern, actual = _segments(route_path), _segments(request_path)
    score = []
    for i, seg in enumerate(pattern):
        if seg.startswith("{") and seg.endswith("+}"):
            return tuple(score + [0]) if i == len(pattern) - 1 and len(actual) > i else None
        if i >= len(actual) or not actual[i]:
            return None
        if seg.startswith("{") and seg.endswith("}"):
            score.append(1)
        elif seg == actual[i]:
            score.append(2)
        else:
            return None
    return tuple(score) if len(actual) == len(pattern) else None


def resolve_router(routes: list[Route], method: str, path: str) -> str | None:
    """cargo lambda watch: the most specific path wins first; then the method is
    looked up on that path only (a path that lacks the method does not fall
    through to a catch-all)."""
    best, best_score = [], None
    for route in routes:
        score = _match(route.path, path)
        if score is None:
            continue
        if best_score is None or score > best_score:
            best, best_score = [route], score
        elif score == best_score:
            best.append(route)
    for route in best:
        if route.method in (method, ANY):
            return route.function
    return None


def resolve_api_gateway(routes: list[Route], method: str, path: str) -> str | None:
    """API Gateway HTTP API: a route is a method and a path; among the routes
    whose method matches (ANY matches every method), the most specific path
    wins, and an explicit method beats ANY on the same path."""
    best, best_key = None, None
    for route in routes:
        if route.method not in (method, ANY):
            continue
        score = _match(route.path, path)
        if score is None:
            continue
        key = (score, route.method != ANY)
        if best_key is None or key > best_key:
            best, best_key = route, key
    return best.function if best else None


# Values substituted for "{id}" and greedy segments when probing both tables:
# the literal segments of either table too, so that static-versus-parameter
# choices (`/api/users/self`, `/Users/.search`) are exercised.
SAMPLE_SEGMENTS = ("7", "abc", "1.json", "urn:ietf:params:scim:schemas:core:2.0:User")


def probe_paths(*tables: list[Route]) -> list[str]:
    literals = {seg for table in tables for r in table for seg in _segments(r.path)
                if not seg.startswith("{")}
    samples = sorted(set(SAMPLE_SEGMENTS) | literals)
    paths = set()
    for table in tables:
        for route in table:
            expansions = [""]
            for seg in _segments(route.path):
                if seg.startswith("{") and seg.endswith("+}"):
                    values = samples + ["x/y", "Users/7/x", "v1/scim/Groups"]
                elif seg.startswith("{"):
                    values = samples
                else:
                    values = [seg]
                expansions = [f"{p}/{v}" for p in expansions for v in values]
            paths.update(expansions)
    return sorted(paths)


def parity_differences(router: list[Route], template: list[Route]) -> list[str]:
    """Every request either table routes must reach the same function through
    both: for each probe path and method, the router's choice and API Gateway's."""
    diffs = []
    for path in probe_paths(router, template):
        for method in METHODS:
            local = resolve_router(router, method, path)
            deployed = resolve_api_gateway(template, method, path)
            if local != deployed:
                diffs.append(f"{method} {path}: router -> {local}, template -> {deployed}")
    return diffs


def missing_explicit_routes(router: list[Route], template: list[Route],
                            fallbacks: set[str]) -> list[str]:
    """Operations must be routes of their own in the template, never reached
    through a greedy route: every router entry for a non-fallback function. A
    trailing slash is the same route (as `_match` reads paths): the router needs
    `/api/schema/` of its own, API Gateway does not."""
    have = {(r.method, r.path.rstrip("/"), r.function) for r in template}
    return [f"{r.method} {r.path} -> {r.function}" for r in router
            if r.function not in fallbacks and (r.method, r.path.rstrip("/"), r.function) not in have]


# ---------------------------------------------------------------- the OpenAPI document

# The functions that answer what no operation serves (405, 404): never an operation.
FALLBACKS = frozenset({"users-fallback", "scim-fallback"})
OPENAPI_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# An operation as both sides name it: (METHOD, path), every path parameter written "{}"
# (the router's `{id}` and a document's `{userId}` are one route).
Operation = tuple[str, str]


def load_openapi(text: str | None = None) -> dict:
    import yaml  # PyYAML: cfn-lint's own dependency
    return yaml.safe_load(OPENAPI.read_text() if text is None else text)


def _normalised(path: str) -> str:
    return re.sub(r"\{[^}/]*\}", "{}", path)


def document_operations(document: dict) -> set[Operation]:
    """Every (method, path) the document describes; a path item may be a `$ref`
    into components/pathItems."""
    operations = set()
    for path, item in document.get("paths", {}).items():
        ref = item.get("$ref")
        if ref:
            name = ref.removeprefix("#/components/pathItems/")
            item = document["components"]["pathItems"][name]
        operations |= {(method.upper(), _normalised(path)) for method in OPENAPI_METHODS if method in item}
    return operations


def routed_operations(routes: list[Route]) -> set[Operation]:
    """Every (method, path) a route table sends to an operation's function: all but
    the fallbacks and the catch-alls."""
    return {(r.method, _normalised(r.path)) for r in routes
            if r.function not in FALLBACKS and r.method != ANY}


def openapi_drift(document: dict, router: list[Route], template: list[Route]) -> list[str]:
    """What the route tables and the document disagree on. The router lists every
    operation (CVAT's trailing-slash path too), so it and the document must be
    equal; the template, whose routes API Gateway matches with or without a
    trailing slash, must describe nothing the document lacks."""
    documented = document_operations(document)
    routed = routed_operations(router)
    deployed = routed_operations(template)
    # A path one function serves for every method (the OAuth token endpoint,
    # which answers other methods 405 itself) routes what the document says of it.
    caught = {_normalised(r.path) for r in router if r.method == ANY and r.function not in FALLBACKS}
    routed |= {(m, p) for m, p in documented if p in caught}
    return ([f"{m} {p}: routed (Cargo.toml), not in docs/openapi.yaml" for m, p in sorted(routed - documented)]
            + [f"{m} {p}: in infra/template.yaml, not in docs/openapi.yaml" for m, p in sorted(deployed - documented)]
            + [f"{m} {p}: in docs/openapi.yaml, routed nowhere" for m, p in sorted(documented - routed)])


# ---------------------------------------------------------------- the code's declaration

# What each function may do, as the Rust code declares it (shared/src/store/permissions.rs),
# and the table's schema and the request budget: `usersctl iam --json`. scripts/iac-check.sh
# writes it and passes its path in IAC_DECLARATION; without that, it is generated here.
WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                 "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem"}


@functools.cache
def load_declaration() -> dict:
    """The export, read once per run: tests that break it work on a deep copy."""
    path = os.environ.get("IAC_DECLARATION")
    if path:
        return json.loads(Path(path).read_text())
    out = subprocess.run(["cargo", "run", "-q", "-p", "usersctl", "--", "iam", "--json"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


@dataclass(frozen=True)
class Scope:
    """What a grant's Condition confines it to; None = not confined that way.
    Writes are always confined to the partition keys they touch
    (`dynamodb:LeadingKeys`); the writes every function makes while
    authenticating also to the attributes they change and to reading nothing back."""
    leading_keys: frozenset[str] | None = None
    attributes: frozenset[str] | None = None
    returns_nothing: bool = False

    def __str__(self) -> str:
        parts = []
        if self.leading_keys is not None:
            parts.append(f"LeadingKeys {sorted(self.leading_keys)}")
        if self.attributes is not None:
            parts.append(f"Attributes {sorted(self.attributes)}")
        if self.returns_nothing:
            parts.append("ReturnValues NONE")
        return "under " + ", ".join(parts) if parts else "unconditioned"


UNSCOPED = Scope()


Grant = tuple[str, str, Scope]


def declared_grants(declaration: dict) -> dict[str, set[Grant]]:
    """function -> its (action, resource, scope) triples, one per action of each declared grant."""
    functions = {}
    for function, grants in declaration["functions"].items():
        triples = set()
        for grant in grants:
            keys, attributes = grant["leading_keys"], grant["attributes"]
            scope = Scope(None if keys is None else frozenset(keys),
                          None if attributes is None else frozenset(attributes),
                          grant["return_values"] == "NONE")
            triples |= {(action, grant["resource"], scope) for action in grant["actions"]}
        functions[function] = triples
    return functions


# ---------------------------------------------------------------- template -> granted permissions

def parse_scope(condition) -> Scope | None:
    """A statement's Condition as a Scope; None when it has a shape this check
    does not read (then it cannot tell what the statement allows). The shapes:
    `ForAllValues:StringLike` on `dynamodb:LeadingKeys`, `ForAllValues:StringEquals`
    on `dynamodb:Attributes`, `StringEqualsIfExists` on `dynamodb:ReturnValues` [NONE]."""
    if not condition:
        return UNSCOPED
    shapes = {"ForAllValues:StringLike": "dynamodb:LeadingKeys",
              "ForAllValues:StringEquals": "dynamodb:Attributes",
              "StringEqualsIfExists": "dynamodb:ReturnValues"}
    values = {}
    for operator, block in condition.items():
        if operator not in shapes or not isinstance(block, dict) or set(block) != {shapes[operator]}:
            return None
        listed = _as_list(block[shapes[operator]])
        if not listed or not all(isinstance(v, str) for v in listed):
            return None
        values[shapes[operator]] = frozenset(listed)
    returns = values.get("dynamodb:ReturnValues")
    if returns is not None and returns != {"NONE"}:
        return None
    return Scope(values.get("dynamodb:LeadingKeys"), values.get("dynamodb:Attributes"), returns is not None)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _resource_kind(resource, table_id: str) -> str:
    """`table`, `index/<name>`, or, for what is not the table's items (the
    change-event function's stream, secret, queue and bus), the resource as the
    declaration names it: `<logical id>` for a Ref, `<logical id>.<attribute>`
    for a GetAtt, the string of a Sub."""
    if resource == {"Fn::GetAtt": [table_id, "Arn"]}:
        return "table"
    if isinstance(resource, dict) and isinstance(resource.get("Fn::Sub"), str):
        m = re.fullmatch(r"\$\{" + table_id + r"\.Arn\}/(index/[\w.-]+)", resource["Fn::Sub"])
        if m:
            return m.group(1)
        return resource["Fn::Sub"]
    if isinstance(resource, dict) and set(resource) == {"Ref"} and isinstance(resource["Ref"], str):
        return resource["Ref"]
    if isinstance(resource, dict) and set(resource) == {"Fn::GetAtt"}:
        target = resource["Fn::GetAtt"]
        if isinstance(target, str):
            return target
        if isinstance(target, list) and len(target) == 2 and all(isinstance(t, str) for t in target):
            return f"{target[0]}.{target[1]}"
    return f"unknown:{resource!r}"


def policy_statements(template: dict, resource: dict) -> tuple[list[dict], list[str]]:
    """Statements a function's role gets from its Policies: inline documents and
    managed policies of this template. Anything else (SAM policy templates,
    foreign ARNs) cannot be checked and is reported."""
    statements, problems = [], []
    for policy in _as_list(resource.get("Properties", {}).get("Policies", [])):
        if isinstance(policy, dict) and set(policy) == {"Ref"}:
            target = template["Resources"].get(policy["Ref"], {})
            if target.get("Type") != "AWS::IAM::ManagedPolicy":
                problems.append(f"policy {policy} is not a managed policy of this template")
                continue
            statements += _as_list(target["Properties"]["PolicyDocument"]["Statement"])
        elif isinstance(policy, dict) and "Statement" in policy:
            statements += _as_list(policy["Statement"])
        else:
            problems.append(f"policy {policy!r} cannot be checked (use an inline statement)")
    return statements, problems


def table_id(template: dict) -> str:
    tables = [lid for lid, r in template["Resources"].items() if r.get("Type") == "AWS::DynamoDB::Table"]
    assert len(tables) == 1, tables
    return tables[0]


def granted(template: dict, resource: dict) -> tuple[set[tuple[str, str, Scope]], list[str]]:
    """(action, resource kind, scope) triples of a function's role."""
    statements, problems = policy_statements(template, resource)
    tid = table_id(template)
    grants = set()
    for st in statements:
        if st.get("Effect") != "Allow" or "NotAction" in st or "NotResource" in st:
            problems.append(f"statement {st!r}: only Allow with Action and Resource is expected")
            continue
        scope = parse_scope(st.get("Condition"))
        if scope is None:
            problems.append(f"statement {st!r}: a Condition this check cannot read")
            continue
        for action in _as_list(st.get("Action", [])):
            for res in _as_list(st.get("Resource", [])):
                grants.add((action, _resource_kind(res, tid), scope))
    return grants, problems


def wildcard_problems(template: dict) -> list[str]:
    """Wildcard actions or resources in any IAM statement of the template."""
    problems = []

    def walk(where: str, node):
        if isinstance(node, dict):
            if "Effect" in node and ("Action" in node or "NotAction" in node):
                for action in _as_list(node.get("Action", [])) + _as_list(node.get("NotAction", [])):
                    if not isinstance(action, str) or "*" in action:
                        problems.append(f"{where}: action {action!r}")
                for res in _as_list(node.get("Resource", [])):
                    if res == "*" or (isinstance(res, str) and res.endswith(":*")):
                        problems.append(f"{where}: resource {res!r}")
            for key, value in node.items():
                walk(where, value)
        elif isinstance(node, list):
            for value in node:
                walk(where, value)

    for lid, res in template["Resources"].items():
        if res.get("Type", "").startswith("AWS::IAM::") or res.get("Type") == "AWS::Serverless::Function":
            walk(lid, res.get("Properties", {}))
    return problems


def _grant_str(grant: tuple[str, str, Scope]) -> str:
    action, resource, scope = grant
    return f"{action} on {resource} {scope}"


def permission_differences(template: dict, declaration: dict) -> list[str]:
    """Each function's role against its declaration in the code: every declared
    grant is in the template, nothing else is (store::permissions; the
    interceptor of tests/permissions.rs holds the code to the same declaration)."""
    diffs = []
    by_binary = {binary_of(r): r for r in serverless_functions(template).values()}
    declared = declared_grants(declaration)
    for function in sorted(set(by_binary) - set(declared)):
        diffs.append(f"{function}: in the template but not declared in store::permissions")
    for function, needed in sorted(declared.items()):
        resource = by_binary.get(function)
        if resource is None:
            diffs.append(f"{function}: declared in store::permissions but not in the template")
            continue
        grants, problems = granted(template, resource)
        diffs += [f"{function}: {p}" for p in problems]
        for grant in sorted(needed - grants, key=_grant_str):
            diffs.append(f"{function}: is declared {_grant_str(grant)} but not granted it")
        for grant in sorted(grants - needed, key=_grant_str):
            diffs.append(f"{function}: is granted {_grant_str(grant)} but not declared it")
    return diffs


def write_leading_keys(template: dict, resource: dict) -> set[frozenset[str] | None]:
    """The LeadingKeys of each write grant of a function's role (None: unconfined)."""
    grants, _ = granted(template, resource)
    return {scope.leading_keys for action, _, scope in grants if action in WRITE_ACTIONS}


# ---------------------------------------------------------------- the table vs the code's CreateTable


def table_differences(template: dict, declaration: dict) -> list[str]:
    """The template's table against the CreateTable request and TTL the code
    makes the table with (`usersctl table create`, DynamoDB Local): billing,
    attribute definitions, key schema, every index's keys and projection."""
    wanted = declaration["table"]
    table = template["Resources"][table_id(template)]["Properties"]
    diffs = []
    for prop in ("BillingMode", "KeySchema", "TimeToLiveSpecification", "StreamSpecification"):
        if table.get(prop) != wanted[prop]:
            diffs.append(f"{prop}: template {table.get(prop)!r}, code {wanted[prop]!r}")

    def definitions(ds):
        return sorted((d["AttributeName"], d["AttributeType"]) for d in ds or [])
    if definitions(table.get("AttributeDefinitions")) != definitions(wanted["AttributeDefinitions"]):
        diffs.append(f"AttributeDefinitions: template {table.get('AttributeDefinitions')!r}, "
                     f"code {wanted['AttributeDefinitions']!r}")
    have = {g["IndexName"]: g for g in table.get("GlobalSecondaryIndexes") or []}
    want = {g["IndexName"]: g for g in wanted["GlobalSecondaryIndexes"]}
    for name in sorted(set(have) ^ set(want)):
        diffs.append(f"index {name}: only in the {'template' if name in have else 'code'}")
    for name in sorted(set(have) & set(want)):
        for prop in ("KeySchema", "Projection"):
            if have[name].get(prop) != want[name][prop]:
                diffs.append(f"index {name} {prop}: template {have[name].get(prop)!r}, "
                             f"code {want[name][prop]!r}")
    return diffs


# ---------------------------------------------------------------- function timeout vs the code's budget

# Lambda's (and SAM's) Timeout when a function sets none.
LAMBDA_DEFAULT_TIMEOUT = 3
# An HTTP API integration gives up after 30 s, whatever the function's Timeout.
HTTP_API_TIMEOUT = 30
# Seconds past the DynamoDB budget a function may run: enough to answer 503 and log the request
# after the budget runs out; more and the budget no longer bounds what a caller waits.
TIMEOUT_SLACK = 4

def request_budget_seconds(declaration: dict) -> float:
    """store::REQUEST_BUDGET, in seconds (`usersctl iam --json`)."""
    return declaration["request_budget_seconds"]


def request_budgets(declaration: dict) -> dict[str, float]:
    """binary -> the most one of its requests waits on DynamoDB, in seconds: REQUEST_BUDGET,
    or a budget of its own (scim-bulk's BULK_REQUEST_BUDGET), as `usersctl iam --json` says."""
    return declaration["function_request_budget_seconds"]


def function_timeouts(template: dict) -> dict[str, object]:
    """binary -> its effective Timeout (Globals, overridden per function; Lambda's default)."""
    return {binary_of(r): effective_properties(template, r).get("Timeout", LAMBDA_DEFAULT_TIMEOUT)
            for r in serverless_functions(template).values()}


def timeout_problems(budgets: float | dict[str, float], timeouts: dict[str, object]) -> list[str]:
    """Each function must outlive its DynamoDB budget (one for all, or per function), so that it
    answers (a 503) instead of being killed mid-request, by at most TIMEOUT_SLACK seconds, and
    end before the HTTP API gives up on it: budget < Timeout <= budget + TIMEOUT_SLACK,
    Timeout < HTTP_API_TIMEOUT."""
    problems = []
    for function, timeout in sorted(timeouts.items()):
        budget = budgets[function] if isinstance(budgets, dict) else budgets
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            problems.append(f"{function}: Timeout {timeout!r} is not a number of seconds")
            continue
        if timeout <= budget:
            problems.append(f"{function}: Timeout {timeout} s is not longer than the DynamoDB "
                            f"budget of {budget} s: Lambda would kill it before it answers")
        elif timeout > budget + TIMEOUT_SLACK:
            problems.append(f"{function}: Timeout {timeout} s is more than {TIMEOUT_SLACK} s past "
                            f"the DynamoDB budget of {budget} s: raise the budget or lower the Timeout")
        if timeout >= HTTP_API_TIMEOUT:
            problems.append(f"{function}: Timeout {timeout} s is not under the HTTP API's "
                            f"{HTTP_API_TIMEOUT} s integration limit")
    return problems


# ---------------------------------------------------------------- change events: the stream's mapping


def event_mapping_problems(template: dict) -> list[str]:
    """The table's stream must reach events-publish through one event source
    mapping that reports partial failures, splits a failing batch, gives up
    after a bounded number of retries, and sends what it gave up on to a queue
    of this template; the table must stream new and old images."""
    problems = []
    tid = table_id(template)
    stream = template["Resources"][tid]["Properties"].get("StreamSpecification")
    if stream != {"StreamViewType": "NEW_AND_OLD_IMAGES"}:
        problems.append(f"table StreamSpecification {stream!r}, not NEW_AND_OLD_IMAGES")
    publishers = [lid for lid, r in serverless_functions(template).items() if binary_of(r) == "events-publish"]
    mappings = [(lid, r["Properties"]) for lid, r in template["Resources"].items()
                if r.get("Type") == "AWS::Lambda::EventSourceMapping"]
    if len(publishers) != 1 or len(mappings) != 1:
        return problems + [f"want one events-publish function and one mapping, have {publishers} and "
                           f"{[lid for lid, _ in mappings]}"]
    (lid, props), publisher = mappings[0], publishers[0]
    if props.get("EventSourceArn") != {"Fn::GetAtt": [tid, "StreamArn"]}:
        problems.append(f"{lid}: EventSourceArn is not the table's stream")
    if props.get("FunctionName") != {"Ref": publisher}:
        problems.append(f"{lid}: FunctionName is not {publisher}")
    if props.get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
        problems.append(f"{lid}: FunctionResponseTypes must be [ReportBatchItemFailures]")
    if props.get("BisectBatchOnFunctionError") is not True:
        problems.append(f"{lid}: BisectBatchOnFunctionError must be true")
    retries = props.get("MaximumRetryAttempts")
    if not isinstance(retries, int) or not 0 <= retries <= 100:
        problems.append(f"{lid}: MaximumRetryAttempts must be a bound (0-100), not {retries!r}")
    if props.get("ParallelizationFactor", 1) != 1:
        problems.append(f"{lid}: ParallelizationFactor must be 1 (one batch per shard keeps items in order)")
    destination = (props.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
    queue = destination.get("Fn::GetAtt", [None])[0] if isinstance(destination, dict) else None
    if not queue or template["Resources"].get(queue, {}).get("Type") != "AWS::SQS::Queue":
        problems.append(f"{lid}: DestinationConfig.OnFailure must be an SQS queue of this template")
    return problems
