"""DynamoDB failing: both APIs answer 503 with Retry-After (never 500), in time, and write
nothing by halves.

scripts/e2e.sh puts tests/e2e/faultproxy.py between the main stack's functions and DynamoDB
and sets E2E_FAULTS_URL (its control endpoint); usersctl and these tests' own checks talk to
DynamoDB directly. The contract under test:

- a DynamoDB failure (throttling, limits, 5xx, timeouts, connection failures, transactions
  that keep being cancelled) is a 503 with `Retry-After: <seconds>` in the API's own error
  format (SCIM Error on /api/v1/scim, DRF `{"detail": ...}` on /api/users), never a 500;
- every request ends within 10 s (8 s of DynamoDB time at most, function timeout 10 s);
- nothing is half-written: what a 2xx wrote is whole and the same through both APIs, and a
  request that got a 503 can simply be sent again.

These tests run after every other e2e test (conftest.py) and always leave the proxy healed.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from helpers import BASE_URL, FAULT_REPORT, create_user
from scim_helpers import ERROR_SCHEMA, PATCH_SCHEMA, SCIM_PATH, SCIM_PROFILE, USER_SCHEMA

FAULTS_URL = os.environ.get("E2E_FAULTS_URL", "")
REPORT_FILE = os.environ.get("E2E_FAULTS_REPORT", "")

pytestmark = pytest.mark.skipif(
    not FAULTS_URL, reason="E2E_FAULTS_URL is not set (scripts/e2e.sh starts the fault proxy)")

RATE = 0.3
MIX = ["throttling", "provisioned", "limit", "server_error", "tx_throttled"]
CREATES = 30
# The SDK's retries hide most 30 % failures; a short burst of creates at 80 % makes sure some
# creates do get a 503, so that retrying them (and what they left behind) is checked too.
BURST_RATE = 0.8
BURST_CREATES = 12
OPS = 90
THREADS = 4
LIMIT_S = 10.0          # every request answers within this
CLIENT_TIMEOUT_S = 20.0  # a request still open after this is given up (and counted as a failure)

ODM = SCIM_PROFILE == "odm"
# What each call may answer besides 503 (404/409/412 only where the state makes it legitimate).
EXPECTED = {
    "scim_create": {201} if ODM else {201, 409},
    "scim_patch_name": {200, 204, 404, 409, 412},
    "scim_patch_active": {200, 204, 404, 409, 412},
    "scim_get": {200, 404},
    "scim_filter": {200},
    "scim_list": {200},
    "admin_patch": {200, 404, 409, 412},
    "admin_get": {200, 404},
    "admin_list": {200},
}


# --- the proxy and plain HTTP ----------------------------------------------------------------


def faults(**cfg) -> dict:
    """POST the fault configuration to the proxy; returns its state."""
    req = urllib.request.Request(FAULTS_URL, data=json.dumps(cfg).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def fault_state() -> dict:
    with urllib.request.urlopen(FAULTS_URL, timeout=10) as resp:
        return json.load(resp)


def heal() -> dict:
    """Pass-through again; held (hanging) connections are let go."""
    state = faults(rate=0)
    for _ in range(50):
        if state["hanging"] == 0:
            break
        time.sleep(0.1)
        state = fault_state()
    return state


@dataclass
class Call:
    op: str
    method: str
    path: str
    status: int           # 0: no HTTP answer (timeout, connection reset)
    seconds: float
    headers: dict
    body: object
    error: str = ""

    @property
    def scim(self) -> bool:
        return self.path.startswith(SCIM_PATH)

    def __str__(self):
        text = self.error or json.dumps(self.body)[:200]
        return f"{self.op}: {self.method} {self.path} -> {self.status} in {self.seconds:.2f} s: {text}"


def http(op: str, method: str, path: str, token: str, body: object = None,
         timeout: float = CLIENT_TIMEOUT_S) -> Call:
    """One plain call: `Authorization: Bearer` on SCIM paths, `Token` on /api/users."""
    scim = path.startswith(SCIM_PATH)
    req = urllib.request.Request(BASE_URL + path, method=method)
    req.add_header("Authorization", f"{'Bearer' if scim else 'Token'} {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/scim+json" if scim else "application/json")
    start = time.monotonic()
    error = ""
    try:
        with urllib.request.urlopen(req, data=data, timeout=timeout) as resp:
            status, headers, content = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, headers, content = err.code, dict(err.headers), err.read()
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as err:
        status, headers, content, error = 0, {}, b"", f"no answer: {err!r}"
    seconds = time.monotonic() - start
    try:
        parsed = json.loads(content) if content else None
    except ValueError:
        parsed = content.decode(errors="replace")
    return Call(op, method, path, status, seconds, {k.lower(): v for k, v in headers.items()},
                parsed, error)


def problems_of_503(c: Call) -> list[str]:
    """What is wrong with this 503 (Retry-After, body in the API's own format)."""
    out = []
    retry_after = c.headers.get("retry-after", "")
    if not (retry_after.isdigit() and int(retry_after) > 0):
        out.append(f"503 without a positive integer Retry-After ({retry_after!r})")
    body = c.body
    if c.scim:
        if not c.headers.get("content-type", "").startswith("application/scim+json"):
            out.append(f"SCIM 503 content-type {c.headers.get('content-type')!r}")
        if not (isinstance(body, dict) and body.get("schemas") == [ERROR_SCHEMA]
                and body.get("status") == "503" and body.get("detail")):
            out.append("SCIM 503 body is not a SCIM Error with status \"503\"")
    elif not (isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"]):
        out.append('admin 503 body is not {"detail": "..."}')
    return out


def problems(c: Call, expected: set[int]) -> list[str]:
    out = []
    if c.status == 500:
        out.append("500")
    elif c.status == 503:
        out += problems_of_503(c)
    elif c.status not in expected:
        out.append(f"unexpected status {c.status}")
    if c.seconds >= LIMIT_S:
        out.append(f"took {c.seconds:.1f} s (limit {LIMIT_S:.0f} s)")
    return [f"{p} | {c}" for p in out]


def report(line: str) -> None:
    FAULT_REPORT.append(line)
    print(line)


# --- users and what each may hold ------------------------------------------------------------


@dataclass
class Subject:
    """A user the workload touches, and the values each field may hold afterwards: the value of
    the last 2xx write, plus those of any later 503'd write (it may or may not have landed)."""
    username: str
    email: str
    family: str
    given: set[str]
    active: set[bool] = field(default_factory=lambda: {True})
    id: str | None = None
    create_body: dict | None = None
    create_status: int | None = None

    def wrote(self, attr: str, value, status: int) -> None:
        if 200 <= status < 300:
            setattr(self, attr, {value})
        elif status == 0 or status >= 500:
            getattr(self, attr).add(value)


def scim_user_body(username: str, given: str, family: str, email: str) -> dict:
    return {"schemas": [USER_SCHEMA], "userName": username, "active": True,
            "name": {"givenName": given, "familyName": family},
            "emails": [{"value": email, "type": "work", "primary": True}]}


@dataclass
class Workload:
    seed: int
    calls: list[Call]
    subjects: list[Subject]
    proxy: dict
    seconds: float


def run_ops(token: str, subjects: list[Subject], rng: random.Random) -> list[Call]:
    """OPS mixed calls; the calls on one user run in order on one thread."""
    kinds = ["scim_patch_name", "scim_patch_active", "scim_get", "scim_filter", "scim_list",
             "admin_patch", "admin_get", "admin_list"]
    plan = [(kinds[i % len(kinds)], rng.randrange(len(subjects)), i) for i in range(OPS)]
    rng.shuffle(plan)
    lanes: list[list] = [[] for _ in range(THREADS)]
    for step in plan:
        lanes[step[1] % THREADS].append(step)

    def one(op: str, s: Subject, n: int) -> Call:
        if op == "scim_patch_name":
            value = f"Sg{n}"
            c = http(op, "PATCH", f"{SCIM_PATH}/Users/{s.id}", token, {
                "schemas": [PATCH_SCHEMA],
                "Operations": [{"op": "replace", "path": "name.givenName", "value": value}]})
            s.wrote("given", value, c.status)
        elif op == "scim_patch_active":
            value = n % 3 != 0  # mostly reactivations, some deactivations
            c = http(op, "PATCH", f"{SCIM_PATH}/Users/{s.id}", token, {
                "schemas": [PATCH_SCHEMA],
                "Operations": [{"op": "replace", "path": "active", "value": value}]})
            s.wrote("active", value, c.status)
        elif op == "scim_get":
            c = http(op, "GET", f"{SCIM_PATH}/Users/{s.id}", token)
        elif op == "scim_filter":
            flt = urllib.parse.quote(f'userName eq "{s.username}"')
            c = http(op, "GET", f"{SCIM_PATH}/Users?filter={flt}", token)
        elif op == "scim_list":
            c = http(op, "GET", f"{SCIM_PATH}/Users?startIndex=1&count=20", token)
        elif op == "admin_patch":
            value = f"Ag{n}"
            c = http(op, "PATCH", f"/api/users/{s.id}", token, {"first_name": value})
            s.wrote("given", value, c.status)
        elif op == "admin_get":
            c = http(op, "GET", f"/api/users/{s.id}", token)
        else:
            c = http(op, "GET", "/api/users?page_size=10", token)
        return c

    def lane(steps) -> list[Call]:
        return [one(op, subjects[idx], n) for op, idx, n in steps]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return [c for calls in pool.map(lane, lanes) for c in calls]


@pytest.fixture(scope="module")
def workload(admin_token, run_id) -> Workload:
    return run_workload(admin_token, run_id)


def run_workload(admin_token: str, run_id: str) -> Workload:
    """~130 calls with 30 % of the main stack's DynamoDB calls failing (no hangs): SCIM creates
    (a few of them at 80 %), then PATCH/GET/filter/list through both APIs. Always heals."""
    heal()
    faults(reset=True)
    # Users made directly in DynamoDB (no faults), so the workload has users even if every
    # create failed.
    seeded = []
    for i in range(4):
        name = f"{run_id}_fs{i}"
        person = create_user(name, first_name=f"Seed{i}", last_name="Seeded",
                             email=f"{run_id}.fs{i}@example.com")
        seeded.append(Subject(name, person.email, "Seeded", {f"Seed{i}"}, id=str(person.id)))
    fresh = []
    for i in range(CREATES + BURST_CREATES):
        name = f"{run_id}_f{i:02d}"
        s = Subject(name, f"{run_id}.f{i:02d}@example.com", f"Fam{i}", {f"Giv{i}"})
        s.create_body = scim_user_body(name, f"Giv{i}", s.family, s.email)
        fresh.append(s)

    seed = random.SystemRandom().randrange(1 << 30)
    rng = random.Random(seed)
    start = time.monotonic()
    try:
        faults(rate=RATE, kinds=MIX, seed=seed)

        def create(s: Subject) -> Call:
            c = http("scim_create", "POST", f"{SCIM_PATH}/Users", admin_token, s.create_body)
            s.create_status = c.status
            if c.status == 201 and isinstance(c.body, dict):
                s.id = str(c.body.get("id"))
            return c

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            calls = list(pool.map(create, fresh[:CREATES]))
            faults(rate=BURST_RATE, kinds=MIX)
            calls += list(pool.map(create, fresh[CREATES:]))
            faults(rate=RATE, kinds=MIX)
        subjects = seeded + [s for s in fresh if s.id]
        calls += run_ops(admin_token, subjects, rng)
    finally:
        proxy = heal()
    return Workload(seed, calls, seeded + fresh, proxy, time.monotonic() - start)


def test_under_30_percent_failures_every_answer_is_2xx_or_a_proper_503(workload):
    calls = workload.calls
    by_op = Counter((c.op, c.status) for c in calls)
    statuses = Counter(c.status for c in calls)
    slowest = max(calls, key=lambda c: c.seconds)
    injected = {k: v for k, v in workload.proxy["injected"].items() if v}
    report(f"workload: {len(calls)} requests in {workload.seconds:.1f} s (rate {RATE}, "
           f"{BURST_CREATES} of the creates at {BURST_RATE}, kinds {'+'.join(MIX)}, "
           f"seed {workload.seed}); statuses "
           + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
    report("  per call: " + ", ".join(f"{op} {s}: {n}" for (op, s), n in sorted(by_op.items())))
    report(f"  proxy: {workload.proxy['requests']} DynamoDB calls, {workload.proxy['forwarded']} "
           f"forwarded, injected {injected}; slowest request {slowest.seconds:.2f} s ({slowest.op})")
    found = [p for c in calls for p in problems(c, EXPECTED[c.op])]
    if REPORT_FILE:
        # scripts/e2e.sh prints the problems last when the suite fails.
        with open(REPORT_FILE, "w") as f:
            json.dump({"seed": workload.seed, "seconds": workload.seconds,
                       "statuses": {str(k): v for k, v in statuses.items()},
                       "per_call": {f"{op} {s}": n for (op, s), n in sorted(by_op.items())},
                       "problems": found[:40], "proxy": workload.proxy}, f, indent=1)

    assert workload.proxy["injected_total"] > 0, "the proxy injected no fault: is it in the path?"
    assert not found, f"{len(found)} problems in {len(calls)} requests:\n" + "\n".join(found[:40])


def scim_get(token: str, uid: str) -> Call:
    return http("scim_get", "GET", f"{SCIM_PATH}/Users/{uid}", token)


def admin_get(token: str, uid: str) -> Call:
    return http("admin_get", "GET", f"/api/users/{uid}", token)


def test_after_healing_every_write_is_whole_and_a_503_create_can_be_retried(workload, admin_token):
    heal()
    bad: list[str] = []

    # A create that got a 503 is sent again, unchanged: it succeeds now.
    retried = 0
    for s in workload.subjects:
        if s.create_body is None or s.create_status == 201:
            continue
        retried += 1
        c = http("scim_create", "POST", f"{SCIM_PATH}/Users", admin_token, s.create_body)
        if c.status == 201:
            s.id = str(c.body["id"])
            s.given, s.active = {s.create_body["name"]["givenName"]}, {True}
        elif c.status == 409 and not ODM:
            # rfc: the first attempt did land after all (then it is whole, as created).
            found = http("scim_filter", "GET", f"{SCIM_PATH}/Users?filter="
                         + urllib.parse.quote(f'userName eq "{s.username}"'), admin_token)
            if found.status == 200 and found.body.get("Resources"):
                s.id = str(found.body["Resources"][0]["id"])
            else:
                bad.append(f"retried create 409 but no such user | {found}")
        else:
            bad.append(f"retry of a create that got {s.create_status} | {c}")
    report(f"  after healing: {retried} creates retried")

    # Every user the workload wrote is whole, and the same through both APIs.
    active_ids, inactive_ids = set(), set()
    for s in workload.subjects:
        if s.id is None:
            continue
        a = admin_get(admin_token, s.id)
        if a.status != 200:
            bad.append(f"{s.username}: admin GET | {a}")
            continue
        u = a.body
        if u.get("username") != s.username or u.get("email") != s.email \
                or u.get("last_name") != s.family:
            bad.append(f"{s.username}: admin shows {u}")
        if u.get("first_name") not in s.given:
            bad.append(f"{s.username}: first_name {u.get('first_name')!r}, expected one of {s.given}")
        if u.get("is_active") not in s.active:
            bad.append(f"{s.username}: is_active {u.get('is_active')}, expected one of {s.active}")
        g = scim_get(admin_token, s.id)
        if ODM and u.get("is_active") is False:
            # odm hides inactive users: 404 now; reactivate, then compare.
            inactive_ids.add(s.id)
            if g.status != 404:
                bad.append(f"{s.username}: inactive, but SCIM GET | {g}")
            p = http("scim_patch_active", "PATCH", f"{SCIM_PATH}/Users/{s.id}", admin_token, {
                "schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "active", "value": True}]})
            if p.status not in (200, 204):
                bad.append(f"{s.username}: reactivating | {p}")
            a, g = admin_get(admin_token, s.id), scim_get(admin_token, s.id)
            u = a.body if a.status == 200 else {}
        else:
            (active_ids if u.get("is_active") else inactive_ids).add(s.id)
        if g.status != 200:
            bad.append(f"{s.username}: SCIM GET | {g}")
            continue
        r = g.body
        emails = [e.get("value") for e in r.get("emails") or []]
        scim_view = (r.get("userName"), (r.get("name") or {}).get("givenName"),
                     (r.get("name") or {}).get("familyName"), emails[:1], r.get("active"))
        admin_view = (u.get("username"), u.get("first_name"), u.get("last_name"),
                      [u.get("email")], u.get("is_active"))
        if scim_view != admin_view:
            bad.append(f"{s.username}: SCIM {scim_view} != admin {admin_view}")
        # Exactly one user by that name (a retried create made no second one).
        f = http("scim_filter", "GET", f"{SCIM_PATH}/Users?filter="
                 + urllib.parse.quote(f'userName eq "{s.username}"'), admin_token)
        if f.status != 200 or f.body.get("totalResults") != 1:
            bad.append(f"{s.username}: filter by userName | {f}")

    # The admin list: count is the number of users listed, and it holds every user written.
    lst = http("admin_list", "GET", "/api/users?page_size=all", admin_token)
    if lst.status != 200:
        bad.append(f"admin list | {lst}")
    else:
        results = lst.body.get("results") or []
        if lst.body.get("count") != len(results):
            bad.append(f"admin list: count {lst.body.get('count')} but {len(results)} listed")
        listed = {str(u["id"]) for u in results}
        missing = {s.username for s in workload.subjects if s.id and s.id not in listed}
        if missing:
            bad.append(f"admin list lacks {sorted(missing)}")

    # The SCIM list, page by page: totalResults is the number of users listed.
    listed, total, start = [], None, 1
    for _ in range(100):
        page = http("scim_list", "GET", f"{SCIM_PATH}/Users?startIndex={start}&count=100", admin_token)
        if page.status != 200:
            bad.append(f"SCIM list | {page}")
            break
        total = page.body.get("totalResults")
        resources = page.body.get("Resources") or []
        listed += resources
        if not resources or len(listed) >= (total or 0):
            break
        start += len(resources)
    if total != len(listed):
        bad.append(f"SCIM list: totalResults {total} but {len(listed)} listed")
    if ODM and any(r.get("active") is False for r in listed):
        bad.append("SCIM list (odm) shows inactive users")
    listed_ids = {str(r.get("id")) for r in listed}
    wanted = {s.id for s in workload.subjects if s.id}
    if wanted - listed_ids:
        bad.append(f"SCIM list lacks ids {sorted(wanted - listed_ids)}")
    report(f"  invariants: {len(wanted)} users checked through both APIs "
           f"({len(inactive_ids)} were inactive), SCIM totalResults {total}, "
           f"{len(bad)} problems")
    assert not bad, "\n".join(bad[:40])


def test_a_hanging_dynamodb_is_a_503_within_10_seconds(admin_token):
    heal()
    me = http("admin_get", "GET", "/api/users/self", admin_token)
    assert me.status == 200, me
    uid = str(me.body["id"])
    calls: list[Call] = []
    try:
        faults(rate=1.0, kinds=["hang"])
        with ThreadPoolExecutor(max_workers=2) as pool:
            calls = list(pool.map(lambda f: f(), [
                lambda: http("scim_get", "GET", f"{SCIM_PATH}/Users/{uid}", admin_token),
                lambda: http("admin_self", "GET", "/api/users/self", admin_token),
            ]))
    finally:
        state = heal()
    report("  hang: " + "; ".join(f"{c.op} {c.status} in {c.seconds:.2f} s" for c in calls)
           + f" (proxy held {state['injected']['hang']} DynamoDB calls)")
    found = [p for c in calls for p in problems(c, set())]
    # Healed, the stack answers again at once.
    after = http("admin_get", "GET", "/api/users/self", admin_token)
    assert after.status == 200 and after.seconds < LIMIT_S, after
    assert state["hanging"] == 0, state
    assert not found, "\n".join(found)
