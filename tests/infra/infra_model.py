"""What tests/infra reads: the SAM template, the cargo-lambda router, the function
packages, and which DynamoDB actions each function's code performs.

Everything here is a pure function of file contents, so the tests can feed it
deliberately broken copies and check that the comparisons notice.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
CARGO_TOML = ROOT / "Cargo.toml"
FUNCTIONS = ROOT / "functions"
SHARED_SRC = ROOT / "shared" / "src"

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
    """Function properties with SAM Globals applied (maps merge, the function wins)."""
    merged = dict(template.get("Globals", {}).get("Function", {}))
    for key, value in resource.get("Properties", {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


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
    through a greedy route: every router entry for a non-fallback function."""
    have = {(r.method, r.path, r.function) for r in template}
    return [f"{r.method} {r.path} -> {r.function}" for r in router
            if r.function not in fallbacks and (r.method, r.path, r.function) not in have]


# ---------------------------------------------------------------- code -> DynamoDB actions

# SDK calls and transaction builders -> the IAM action they need. Transactions
# need the action of each item (TransactWriteItems has no action of its own).
SDK_ACTIONS = {
    r"\.\s*get_item\s*\(\s*\)": "dynamodb:GetItem",
    r"\.\s*batch_get_item\s*\(\s*\)": "dynamodb:BatchGetItem",
    r"\.\s*transact_get_items\s*\(\s*\)": "dynamodb:GetItem",
    r"\.\s*query\s*\(\s*\)": "dynamodb:Query",
    r"\.\s*scan\s*\(\s*\)": "dynamodb:Scan",
    r"\.\s*put_item\s*\(\s*\)": "dynamodb:PutItem",
    r"\.\s*update_item\s*\(\s*\)": "dynamodb:UpdateItem",
    r"\.\s*delete_item\s*\(\s*\)": "dynamodb:DeleteItem",
    r"\.\s*batch_write_item\s*\(\s*\)": "dynamodb:BatchWriteItem",
    r"\bPut::builder\s*\(\s*\)": "dynamodb:PutItem",
    r"\bUpdate::builder\s*\(\s*\)": "dynamodb:UpdateItem",
    r"\bDelete::builder\s*\(\s*\)": "dynamodb:DeleteItem",
    r"\bConditionCheck::builder\s*\(\s*\)": "dynamodb:ConditionCheckItem",
}
WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                 "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem"}
KEYS_RS = "store/keys.rs"

_FN = re.compile(r"^[ \t]*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?fn\s+(\w+)", re.M)


def rust_functions(source: str) -> dict[str, str]:
    """fn name -> its text (up to the next fn), test modules left out. Same-named
    fns (methods of different types) are merged: an over-approximation."""
    source = source.split("#[cfg(test)]")[0]
    starts = [(m.start(), m.group(1)) for m in _FN.finditer(source)]
    fns: dict[str, str] = {}
    for i, (start, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(source)
        fns[name] = fns.get(name, "") + source[start:end]
    return fns


def _blank_literals(source: str) -> str:
    """`source` with comments and string and char literals blanked out (same
    length), so that braces inside them (`format!("USER#{id}")`) do not count."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    source = re.sub(r'//[^\n]*|"(?:[^"\\]|\\.)*"', blank, source)
    return re.sub(r"'(?:[^'\\\n]|\\.)'", blank, source)


_IMPL = re.compile(r"^[ \t]*impl\b(?:\s*<[^>{]*>)?\s+(?:[\w:<>, ]+?\s+for\s+)?(\w+)(?:<[^>{]*>)?[^{;]*\{", re.M)


def impl_fns(source: str) -> dict[str, set[str]]:
    """Type -> the fns of its `impl` blocks (inherent or trait), test modules
    left out: which fn a `value.method(` or `Type::fn(` call can reach."""
    source = _blank_literals(source.split("#[cfg(test)]")[0])
    types: dict[str, set[str]] = {}
    for m in _IMPL.finditer(source):
        depth, end = 1, m.end()
        while depth and end < len(source):
            depth += {"{": 1, "}": -1}.get(source[end], 0)
            end += 1
        types.setdefault(m.group(1), set()).update(_FN.findall(source[m.end():end]))
    return types


def read_sources() -> dict[str, str]:
    """Every Rust file of the shared crate, by path relative to shared/src."""
    return {str(p.relative_to(SHARED_SRC)): p.read_text() for p in sorted(SHARED_SRC.rglob("*.rs"))}


def gsi_name(sources: dict[str, str]) -> str:
    return re.search(r'pub const GSI1: &str = "([^"]+)"', sources[KEYS_RS]).group(1)


# ---------------------------------------------------------------- code -> partition keys and attributes

# The first element of a tuple: `("COUNTER", ...)`, `("COUNTER".to_string(), ...)`,
# `(format!("USER#{id}"), ...)`. The `(` of a call (`format!(`, `fold(`) does not open a tuple.
_TUPLE_PK = re.compile(r'(?<![\w!])\(\s*(?:format!\(\s*)?"([^"]*)"')


def key_prefixes(keys_rs: str) -> dict[str, frozenset[str]]:
    """Each key fn of keys.rs (one returning a `(pk, sk)` tuple) -> the partition
    keys it builds, as IAM `dynamodb:LeadingKeys` patterns: a literal stays as it
    is (`COUNTER`), a formatted one becomes its literal head and `*` (`USER#*`).
    A key fn whose partition key cannot be read this way is an error: a new key
    shape must not silently escape the check."""
    prefixes = {}
    for name, text in rust_functions(keys_rs).items():
        signature, _, body = text.partition("{")
        if not re.search(r"->\s*\(", signature):
            continue
        patterns = frozenset(lit.split("{")[0] + "*" if "{" in lit else lit
                             for lit in _TUPLE_PK.findall(body))
        if not patterns:
            raise ValueError(f"keys.rs::{name} returns a key, but its partition key is neither "
                             f"a literal nor a format!: teach infra_model.key_prefixes to read it")
        prefixes[name] = patterns
    return prefixes


def gsi_projection(keys_rs: str, const: str = "GSI1_PROJECTED") -> list[str]:
    """keys::GSI1_PROJECTED (or another such list): the non-key attributes an index copies."""
    m = re.search(rf"pub const {const}: &\[&str\] = &\[(.*?)\];", keys_rs, re.S)
    if m is None:
        raise ValueError(f"no `pub const {const}: &[&str] = &[...]` in keys.rs")
    return re.findall(r'"([^"]*)"', m.group(1))


_EXPRESSION_WORDS = {"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN"}


def expression_attributes(expression: str, names: dict[str, str]) -> set[str]:
    """The top-level attributes an update or condition expression names, whether
    it writes, reads or tests them (IAM's `dynamodb:Attributes` counts all of
    them): every name that is not a keyword, a function or a `:value`, with
    `#name`s resolved and nested paths cut to their first element."""
    text = re.sub(r":\w+", " ", expression)
    attributes = set()
    for m in re.finditer(r"(#?[A-Za-z_]\w*)(\s*\()?", text):
        name, call = m.groups()
        nested = m.start() > 0 and text[m.start() - 1] == "."
        if call or nested or name.upper() in _EXPRESSION_WORDS:
            continue
        attributes.add(names.get(name, name))
    return attributes


def _string_args(body: str, method: str) -> list[str | None]:
    """The arguments of every `.method(...)` call in `body`: the string literal, or
    None when the argument is anything else (a variable, a format!)."""
    args = []
    for m in re.finditer(r"\.\s*" + method + r"\s*\(\s*", body):
        lit = re.match(r'"((?:[^"\\]|\\.)*)"\s*\)', body[m.end():])
        args.append(lit.group(1) if lit else None)
    return args


_FORMAT = re.compile(r'format!\(\s*"((?:[^"\\]|\\.)*)"((?:\s*,\s*[\w:.]+)*)\s*,?\s*\)')
_LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')


def expression_fragments(body: str, consts: dict[str, str]) -> tuple[list[str], list[str]]:
    """An expression assembled at run time, as its pieces: every string literal
    of the fn that builds it (not `.expect` messages), a `format!`'s `{}` filled
    from the `keys::` constant it names and its `{variable}`s left out (a
    variable's pieces are literals of the same fn). Returns the fragments and
    what could not be read (a `{}` of anything but a keys.rs constant, a
    `format!` with other arguments than paths): the attributes behind those are unknown."""
    fragments, problems, taken = [], [], []
    for m in _FORMAT.finditer(body):
        taken.append(m.span())
        args = [a.strip() for a in m.group(2).split(",") if a.strip()]
        values = []
        for arg in args:
            const = arg.removeprefix("keys::")
            if const in consts:
                values.append(consts[const])
            else:
                problems.append(f"format! argument {arg!r} is not a keys.rs constant")
                values.append("")
        text = re.sub(r"\{(\w+)\}", lambda n: consts.get(n.group(1), ""), m.group(1))
        pieces = text.split("{}")
        fragments.append("".join(p + (values[i] if i < len(values) else "") for i, p in enumerate(pieces)))
    for m in _LITERAL.finditer(body):
        inside = any(a <= m.start() < b for a, b in taken)
        if inside or re.search(r"\.\s*expect\s*\(\s*$", body[:m.start()]):
            continue
        if re.search(r"\{\w*\}", m.group(1)):
            problems.append(f"a format string this check cannot fill: {m.group(1)!r}")
        fragments.append(m.group(1))
    return fragments, problems


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


class CodeModel:
    """The call graph from each function's handler down to DynamoDB calls.

    Store side (shared/src/store): a store method's actions are the SDK calls in
    its body plus those of the store fns it calls (`x(` in the same file,
    `self.x(` a method of any store file, `keys::x(` / `super::users::x(` a fn
    of the store module the path ends in, `Type::x(` / `value.x(` a fn of the
    impl blocks of a store type other than Store, such as `group.to_item()`).
    The partition keys it writes are those the key fns of
    keys.rs build that its call graph reaches, leaving out callees that only
    read (the keys a read builds are not written). Handler side (the views of
    each module in `view_files`, and auth.rs): a handler's store methods are the
    `store.x(` calls in its body plus those of the view/auth fns it calls (`x(`
    in the same namespace, `auth::x(`)."""

    def __init__(self, sources: dict[str, str]):
        self.sources = sources
        self.gsi = gsi_name(sources)
        self.key_fns = key_prefixes(sources[KEYS_RS])
        self.key_consts = dict(re.findall(r'pub const (\w+): &str = "([^"]*)";', sources[KEYS_RS]))
        self.key_attributes = frozenset({self.key_consts["PK"], self.key_consts["SK"]})
        self.store_files = {path: rust_functions(text) for path, text in sources.items()
                            if path.startswith("store/")}
        self.store_fns = {name for fns in self.store_files.values() for name in fns}
        # The fns of each type's impl blocks in the store (`GroupRecord::to_item`),
        # Store's own aside (`self.x(` reaches those): what `value.x(` and
        # `Type::x(` calls reach.
        self.store_types: dict[str, list[tuple[str, str]]] = {}
        for path, text in sources.items():
            if path.startswith("store/"):
                for type_name, names in impl_fns(text).items():
                    if type_name != "Store":
                        self.store_types.setdefault(type_name, []).extend(
                            (path, n) for n in sorted(names) if n in self.store_files[path])
        self.type_methods = {node for nodes in self.store_types.values() for node in nodes
                             if self._is_method(*node)}
        # A module's handlers and the fns they call: its views and, for SCIM,
        # the request helpers every SCIM view shares (one namespace per module,
        # keyed by the path `serve(` names: `scim::groups::patch` -> "scim::groups").
        # A later file's fn shadows an earlier one of the same name: the Groups
        # handlers (`create`, `patch`, ...) are not the Users ones.
        self.view_files = {"admin_api": ["admin_api/views.rs"],
                           "scim": ["scim/views.rs", "scim/request.rs"],
                           "scim::groups": ["scim/request.rs", "scim/groups.rs"]}
        self.fns = {module: {name: body for path in paths
                             for name, body in rust_functions(sources.get(path, "")).items()}
                    for module, paths in self.view_files.items()}
        self.fns["auth"] = rust_functions(sources["auth.rs"])
        # The sources never change after this: answers are memoised.
        self._memo: dict = {}

    def _cached(self, key, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    # -- store call graph
    def _nodes(self, name: str) -> list[tuple[str, str]]:
        return [(path, name) for path, fns in self.store_files.items() if name in fns]

    def _is_method(self, path: str, name: str) -> bool:
        return bool(re.search(r"\bfn\s+" + name + r"\b[^{]*?\(\s*(?:&\s*(?:'\w+\s+)?)?(?:mut\s+)?self\b",
                              self.store_files[path][name]))

    def _callees(self, path: str, body: str) -> list[tuple[str, str]]:
        return self._cached(("callees", path, body), lambda: self._find_callees(path, body))

    def _find_callees(self, path: str, body: str) -> list[tuple[str, str]]:
        callees = [(path, c) for c in re.findall(r"(?<![\w.:])(\w+)\s*\(", body)
                   if c in self.store_files[path]]
        callees += [(p, c) for c in re.findall(r"\bself\s*\.\s*(\w+)\s*\(", body)
                    for p, fns in self.store_files.items() if c in fns and self._is_method(p, c)]
        # `keys::x(`, `super::users::x(`, `crate::store::item::x(`: the fn of the
        # store file the path ends in (`super` alone: store/mod.rs); `Type::x(`:
        # an associated fn of a store type.
        for path_expr, c in re.findall(r"(?<![\w:])((?:\w+::)+)(\w+)\s*\(", body):
            module = path_expr.rstrip(":").split("::")[-1]
            target = "store/mod.rs" if module == "super" else f"store/{module}.rs"
            if c in self.store_files.get(target, {}):
                callees.append((target, c))
            callees += [node for node in self.store_types.get(module, []) if node[1] == c]
        # `value.x(` on anything but self: a method of a store type (`group.to_item()`).
        for m in re.finditer(r"(\bself\s*)?\.\s*(\w+)\s*\(", body):
            if not m.group(1):
                callees += [node for node in self.type_methods if node[1] == m.group(2)]
        return callees

    def store_actions(self, name: str, skip: frozenset = frozenset()) -> set[tuple[str, str]]:
        """(action, resource) pairs of store method `name`, resource "table" or
        "index/<name>"; fns named in `skip` are left out of the call graph."""
        return self._cached(("actions", name, skip),
                            lambda: self._store_actions(self._nodes(name), skip, set()))

    def _node_actions(self, node: tuple[str, str], skip: frozenset) -> set[tuple[str, str]]:
        return self._cached(("node", node, skip), lambda: self._store_actions([node], skip, set()))

    def _store_actions(self, nodes, skip, seen) -> set[tuple[str, str]]:
        actions = set()
        for path, name in nodes:
            if (path, name) in seen or name in skip:
                continue
            seen.add((path, name))
            body = self.store_files[path][name]
            for pattern, action in SDK_ACTIONS.items():
                if re.search(pattern, body):
                    indexes = re.findall(r"\.\s*index_name\s*\(\s*(?:keys::)?(\w+)\s*\)", body)
                    if action == "dynamodb:Query" and indexes:
                        actions |= {(action, f"index/{self.key_consts[i]}") for i in indexes}
                    else:
                        actions.add((action, "table"))
            actions |= self._store_actions(self._callees(path, body), skip, seen)
        return actions

    def writes(self, name: str, skip: frozenset = frozenset()) -> bool:
        return any(a in WRITE_ACTIONS for a, _ in self.store_actions(name, skip))

    def io_store_methods(self) -> set[str]:
        return {name for name in self.store_fns if self.store_actions(name)}

    def write_graph(self, name: str, skip: frozenset) -> set[tuple[str, str]]:
        """The fns store method `name` reaches, except those that only read and
        what only they reach: where the keys and expressions of its writes are."""
        reached, stack = set(), self._nodes(name)
        while stack:
            node = stack.pop()
            if node in reached or node[1] in skip:
                continue
            reached.add(node)
            path, fn = node
            if path == KEYS_RS and fn in self.key_fns:
                continue
            for callee in self._callees(path, self.store_files[path][fn]):
                actions = self._node_actions(callee, skip)
                if actions and not any(a in WRITE_ACTIONS for a, _ in actions):
                    continue
                stack.append(callee)
        return reached

    def write_prefixes(self, name: str, skip: frozenset = frozenset()) -> frozenset[str]:
        """The partition keys (LeadingKeys patterns) store method `name` writes;
        empty for a method that writes nothing."""
        if not self.writes(name, skip):
            return frozenset()
        return frozenset(prefix for path, fn in self.write_graph(name, skip)
                         if path == KEYS_RS and fn in self.key_fns for prefix in self.key_fns[fn])

    # -- the writes of authentication
    def auth_writes(self) -> frozenset[str]:
        """Store methods auth.rs calls that write (last_login, login failures):
        every function authenticates, so even read-only ones make these writes,
        and their grant is confined to exactly what they change."""
        called = {c for body in self.fns["auth"].values()
                  for c in re.findall(r"\bstore\s*\.\s*(\w+)\s*\(", body)}
        return frozenset(c for c in called if self.writes(c))

    def _narrow_scope(self, name: str) -> tuple[Scope, list[str]]:
        """One authentication write: the keys it writes; the key attributes and
        those its update and condition expressions name (IAM counts an attribute
        a condition tests as accessed); whether it reads nothing back. Only a
        single UpdateItem can be confined to attributes (a Put replaces all)."""
        problems = []
        writes = {a for a, _ in self.store_actions(name) if a in WRITE_ACTIONS}
        if writes != {"dynamodb:UpdateItem"}:
            problems.append(f"Store::{name} (called by auth.rs) writes with {sorted(writes)}: "
                            f"only UpdateItem can be confined to the attributes it changes")
        attributes, returns_nothing = set(self.key_attributes), True
        for path, fn in self.write_graph(name, frozenset()):
            body = self.store_files[path][fn]
            names = dict(re.findall(r'\.\s*expression_attribute_names\s*\(\s*"([^"]+)"\s*,\s*"([^"]+)"\s*\)',
                                    body))
            args = _string_args(body, "update_expression") + _string_args(body, "condition_expression")
            expressions = [a for a in args if a is not None]
            if None in args:
                fragments, unread = expression_fragments(body, self.key_consts)
                expressions += fragments
                problems += [f"Store::{name}: an expression of {path}::{fn}: {u}" for u in unread]
            for expression in expressions:
                attributes |= expression_attributes(expression, names)
            for returned in re.findall(r"\.\s*return_values\s*\(\s*([^)]*?)\s*\)", body):
                returns_nothing &= returned == "ReturnValue::None"
        return Scope(self.write_prefixes(name), frozenset(attributes), returns_nothing), problems

    def narrow_scopes(self) -> tuple[dict[str, Scope], list[str]]:
        scopes, problems = self._cached(("narrow",), self._narrow_scopes)
        return dict(scopes), list(problems)

    def _narrow_scopes(self) -> tuple[dict[str, Scope], list[str]]:
        """Authentication write -> the scope of its grant. Writes to the same
        partition keys share one grant (one statement of the shared policy):
        the attributes of all of them, ReturnValues NONE only if none reads back."""
        scopes, problems = {}, []
        for name in sorted(self.auth_writes()):
            scope, found = self._narrow_scope(name)
            scopes[name] = scope
            problems += found
        merged = {}
        for scope in scopes.values():
            prev = merged.get(scope.leading_keys)
            merged[scope.leading_keys] = scope if prev is None else Scope(
                scope.leading_keys, prev.attributes | scope.attributes,
                prev.returns_nothing and scope.returns_nothing)
        return {name: merged[scope.leading_keys] for name, scope in scopes.items()}, problems

    # -- handlers
    def store_calls(self, module: str, name: str, seen=None) -> set[str]:
        """Store methods a view (or auth) fn calls, directly or through its callees."""
        seen = set() if seen is None else seen
        if (module, name) in seen or name not in self.fns[module]:
            return set()
        seen.add((module, name))
        body = self.fns[module][name]
        calls = set(re.findall(r"\bstore\s*\.\s*(\w+)\s*\(", body))
        for callee in set(re.findall(r"(?<![\w.:])(\w+)\s*\(", body)):
            calls |= self.store_calls(module, callee, seen)
        for callee in set(re.findall(r"\bauth::(\w+)\s*\(", body)):
            calls |= self.store_calls("auth", callee, seen)
        return calls

    def handler_actions(self, module: str, handler: str, skip: frozenset = frozenset()) -> set[tuple[str, str]]:
        actions = set()
        for method in self.store_calls(module, handler):
            actions |= self.store_actions(method, skip)
        return actions

    def handler_write_prefixes(self, module: str, handler: str, skip: frozenset = frozenset()) -> frozenset[str]:
        return frozenset().union(*(self.write_prefixes(m, skip) for m in self.store_calls(module, handler)))

    def needed_grants(self, module: str, handler: str) -> tuple[set[tuple[str, str, Scope]], list[str]]:
        """(action, resource, scope) a handler's role must hold: reads as they
        are; its own writes confined to the partition keys they write; the
        authentication writes it reaches confined to their narrow scopes."""
        narrow, problems = self.narrow_scopes()
        if handler not in self.fns.get(module, {}):
            files = self.view_files.get(module)
            return set(), problems + [f"handler {module}::{handler} not found "
                                      f"(in {files or 'no analysed files: add the module to CodeModel.view_files'})"]
        skip = frozenset(narrow)
        prefixes = self.handler_write_prefixes(module, handler, skip)
        needed = set()
        for action, resource in self.handler_actions(module, handler, skip):
            writing = action in WRITE_ACTIONS
            if writing and not prefixes:
                problems.append(f"{module}::{handler} writes ({action}) but no key fn of keys.rs "
                                f"is found behind it: its LeadingKeys cannot be derived")
            needed.add((action, resource, Scope(prefixes) if writing else UNSCOPED))
        for method in self.store_calls(module, handler) & skip:
            needed.add(("dynamodb:UpdateItem", "table", narrow[method]))
        return needed, problems

    def unattributed_store_calls(self, handlers: list[tuple[str, str]]) -> list[str]:
        """Store I/O calls in files or fns the handler analysis never reaches: if
        any exist, the derived permissions could be missing something."""
        io = self.io_store_methods()
        reached: set[tuple[str, str]] = set()
        for module, handler in handlers:
            self.store_calls(module, handler, reached)
        problems = []
        for module, fns in self.fns.items():
            for name, body in fns.items():
                used = set(re.findall(r"\bstore\s*\.\s*(\w+)\s*\(", body)) & io
                if used and (module, name) not in reached:
                    problems.append(f"{module}::{name} calls {sorted(used)} but no handler reaches it")
        analysed = {path for paths in self.view_files.values() for path in paths} | {"auth.rs"}
        for path, text in self.sources.items():
            if path.startswith("store/") or path in analysed:
                continue
            used = set(re.findall(r"\bstore\s*\.\s*(\w+)\s*\(", text.split("#[cfg(test)]")[0])) & io
            if used:
                problems.append(f"{path} calls store methods {sorted(used)} outside the analysed files")
        return problems


def handler_of(main_rs: str) -> tuple[str, str]:
    """functions/<op>/src/main.rs wires one shared handler: `serve(module::fn)`,
    the module a path of any length (`serve(scim::groups::patch)` -> ("scim::groups", "patch"))."""
    found = re.findall(r"serve\(\s*(\w+(?:\s*::\s*\w+)*)\s*::\s*(\w+)\s*\)", main_rs)
    if len(found) != 1:
        raise ValueError(f"expected exactly one runtime::serve(module::handler), found {found}")
    module, handler = found[0]
    return re.sub(r"\s+", "", module), handler


def handlers() -> dict[str, tuple[str, str]]:
    return {name: handler_of((FUNCTIONS / name / "src" / "main.rs").read_text())
            for name in function_packages()}


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
    if resource == {"Fn::GetAtt": [table_id, "Arn"]}:
        return "table"
    if isinstance(resource, dict) and isinstance(resource.get("Fn::Sub"), str):
        m = re.fullmatch(r"\$\{" + table_id + r"\.Arn\}/(index/[\w.-]+)", resource["Fn::Sub"])
        if m:
            return m.group(1)
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


def permission_differences(template: dict, model: CodeModel,
                           handler_table: dict[str, tuple[str, str]] | None = None) -> list[str]:
    """What each function's role grants against what its code does: every action
    it performs is granted, nothing else is; its writes only on the partition
    keys its code writes; the writes of authentication only on their keys and
    attributes (CodeModel.needed_grants)."""
    diffs = []
    by_binary = {binary_of(r): r for r in serverless_functions(template).values()}
    for function, (module, handler) in (handler_table or handlers()).items():
        resource = by_binary.get(function)
        if resource is None:
            diffs.append(f"{function}: not in the template")
            continue
        grants, problems = granted(template, resource)
        needed, unread = model.needed_grants(module, handler)
        diffs += [f"{function}: {p}" for p in problems + unread]
        for grant in sorted(needed - grants, key=_grant_str):
            diffs.append(f"{function}: needs {_grant_str(grant)} (its code does it) but is not granted it")
        for grant in sorted(grants - needed, key=_grant_str):
            diffs.append(f"{function}: is granted {_grant_str(grant)} but its code never needs it")
    return diffs


def write_leading_keys(template: dict, resource: dict) -> set[frozenset[str] | None]:
    """The LeadingKeys of each write grant of a function's role (None: unconfined)."""
    grants, _ = granted(template, resource)
    return {scope.leading_keys for action, _, scope in grants if action in WRITE_ACTIONS}


# ---------------------------------------------------------------- function timeout vs the code's budget

CLIENT_RS = SHARED_SRC / "store" / "client.rs"
# Lambda's (and SAM's) Timeout when a function sets none.
LAMBDA_DEFAULT_TIMEOUT = 3
# An HTTP API integration gives up after 30 s, whatever the function's Timeout.
HTTP_API_TIMEOUT = 30
# Seconds past the DynamoDB budget a function may run: enough to answer 503 and log the request
# after the budget runs out; more and the budget no longer bounds what a caller waits.
TIMEOUT_SLACK = 4

REQUEST_BUDGET_RE = re.compile(
    r"pub const REQUEST_BUDGET: Duration\s*=\s*Duration::from_(secs|millis)\(\s*([\d_]+)\s*\)")


def request_budget_seconds(client_rs: str) -> float:
    """REQUEST_BUDGET of shared/src/store/client.rs, in seconds."""
    m = REQUEST_BUDGET_RE.search(client_rs)
    if m is None:
        raise ValueError("no `pub const REQUEST_BUDGET: Duration = Duration::from_secs/from_millis(n)`")
    value = int(m.group(2).replace("_", ""))
    return value if m.group(1) == "secs" else value / 1000


def function_timeouts(template: dict) -> dict[str, object]:
    """binary -> its effective Timeout (Globals, overridden per function; Lambda's default)."""
    return {binary_of(r): effective_properties(template, r).get("Timeout", LAMBDA_DEFAULT_TIMEOUT)
            for r in serverless_functions(template).values()}


def timeout_problems(budget: float, timeouts: dict[str, object]) -> list[str]:
    """Each function must outlive its DynamoDB budget, so that it answers (a 503) instead of
    being killed mid-request, by at most TIMEOUT_SLACK seconds, and end before the HTTP API
    gives up on it: budget < Timeout <= budget + TIMEOUT_SLACK, Timeout < HTTP_API_TIMEOUT."""
    problems = []
    for function, timeout in sorted(timeouts.items()):
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
