#!/usr/bin/env python3
"""make bench (part, run by scripts/bench-faults.sh): a bounded mixed workload against the odm
stack while tests/e2e/faultproxy.py throttles a share of its DynamoDB calls, for each SDK retry
mode (one `cargo lambda watch` per mode, DYNAMODB_RETRY_MODE) and each fault rate. Prints one
row per (mode, rate): requests, p50/p99 latency, share of 2xx and 503, and the 500s (must be 0).
Stdlib only; talks to 127.0.0.1 only.

    bench-faults.py --faults URL --token T --stack standard=URL --stack adaptive=URL
                    [--rates 0,0.1,0.3] [--requests 150] [--threads 4] [--cell-seconds 40]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

SCIM = "/api/v1/scim"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
KINDS = ["throttling", "provisioned", "tx_throttled"]
# Operation -> weight in the mix.
MIX = {"scim_create": 3, "scim_patch": 2, "scim_get": 2, "scim_filter": 2,
       "admin_get": 2, "admin_patch": 2, "admin_list": 1}
CLIENT_TIMEOUT_S = 20.0


def allowed(url: str) -> str:
    host = urllib.parse.urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"refusing non-local URL {url}")
    return url.rstrip("/")


def call(base: str, method: str, path: str, token: str, body: object = None) -> tuple[int, float, object]:
    scim = path.startswith(SCIM)
    req = urllib.request.Request(base + path, method=method)
    req.add_header("Authorization", f"{'Bearer' if scim else 'Token'} {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/scim+json" if scim else "application/json")
    start = time.monotonic()
    try:
        with urllib.request.urlopen(req, data=data, timeout=CLIENT_TIMEOUT_S) as resp:
            status, content = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, content = err.code, err.read()
    except (urllib.error.URLError, socket.timeout, OSError):
        status, content = 0, b""
    seconds = time.monotonic() - start
    try:
        parsed = json.loads(content) if content else None
    except ValueError:
        parsed = None
    return status, seconds, parsed


def faults(url: str, **cfg) -> dict:
    req = urllib.request.Request(url, data=json.dumps(cfg).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def user_body(name: str, n: int) -> dict:
    return {"schemas": [USER_SCHEMA], "userName": name, "active": True,
            "name": {"givenName": f"G{n}", "familyName": "Bench"},
            "emails": [{"value": f"{name}@example.com", "type": "work", "primary": True}]}


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def run_cell(base: str, token: str, prefix: str, pool: list[str], requests: int, threads: int,
             seed: int, deadline_s: float) -> list[tuple[str, int, float]]:
    """`requests` calls drawn from MIX on `threads` threads; stops early at deadline_s."""
    rng = random.Random(seed)
    ops = rng.choices(list(MIX), weights=list(MIX.values()), k=requests)
    plan = [(op, rng.choice(pool), i) for i, op in enumerate(ops)]
    lock = threading.Lock()
    results: list[tuple[str, int, float]] = []
    stop_at = time.monotonic() + deadline_s
    it = iter(plan)

    def worker():
        while time.monotonic() < stop_at:
            with lock:
                step = next(it, None)
            if step is None:
                return
            op, uid, i = step
            if op == "scim_create":
                r = call(base, "POST", f"{SCIM}/Users", token, user_body(f"{prefix}_{i}", i))
            elif op == "scim_patch":
                r = call(base, "PATCH", f"{SCIM}/Users/{uid}", token, {
                    "schemas": [PATCH_SCHEMA],
                    "Operations": [{"op": "replace", "path": "name.givenName", "value": f"P{i}"}]})
            elif op == "scim_get":
                r = call(base, "GET", f"{SCIM}/Users/{uid}", token)
            elif op == "scim_filter":
                flt = urllib.parse.quote(f'userName eq "{prefix}_{rng.randrange(requests)}"')
                r = call(base, "GET", f"{SCIM}/Users?filter={flt}", token)
            elif op == "admin_get":
                r = call(base, "GET", f"/api/users/{uid}", token)
            elif op == "admin_patch":
                r = call(base, "PATCH", f"/api/users/{uid}", token, {"first_name": f"A{i}"})
            else:
                r = call(base, "GET", "/api/users?page_size=10", token)
            with lock:
                results.append((op, r[0], r[1]))

    with ThreadPoolExecutor(max_workers=threads) as ex:
        for f in [ex.submit(worker) for _ in range(threads)]:
            f.result()
    return results


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faults", required=True, help="the proxy's control URL (/__faults__)")
    ap.add_argument("--token", required=True, help="an admin API token")
    ap.add_argument("--stack", action="append", required=True, help="MODE=BASE_URL")
    ap.add_argument("--rates", default="0,0.1,0.3")
    ap.add_argument("--requests", type=int, default=150)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--cell-seconds", type=float, default=60.0,
                    help="stop a cell's workload after this long (its row is marked *)")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()

    faults_url = allowed(args.faults)
    stacks = [(m, allowed(u)) for m, u in (s.split("=", 1) for s in args.stack)]
    rates = [float(r) for r in args.rates.split(",")]
    run = f"bf{random.SystemRandom().randrange(16**6):06x}"
    rows = []
    header = (f"{'mode':<9} {'rate':>5} {'requests':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
              f"{'2xx':>6} {'503':>6} {'500':>4} {'other':>5} {'ddb calls':>9} {'injected':>8}")
    lines = []
    try:
        for mode, base in stacks:
            # Users to read and patch, made with no faults.
            faults(faults_url, rate=0)
            pool = []
            for n in range(8):
                status, _, body = call(base, "POST", f"{SCIM}/Users", args.token,
                                       user_body(f"{run}_{mode}_pool{n}", n))
                if status != 201:
                    raise SystemExit(f"{mode}: setting up the user pool: POST answered {status}: {body}")
                pool.append(str(body["id"]))
            for rate in rates:
                faults(faults_url, rate=0, reset=True)
                seed = int(rate * 1000) + 1
                faults(faults_url, rate=rate, kinds=KINDS, seed=seed)
                start = time.monotonic()
                try:
                    results = run_cell(base, args.token, f"{run}_{mode}_{int(rate * 100)}", pool,
                                       args.requests, args.threads, seed, args.cell_seconds)
                finally:
                    proxy = faults(faults_url, rate=0)
                wall = time.monotonic() - start
                n = len(results)
                lat = [s * 1000 for _, _, s in results]
                ok = sum(1 for _, st, _ in results if 200 <= st < 300)
                unavailable = sum(1 for _, st, _ in results if st == 503)
                errors = sum(1 for _, st, _ in results if st == 500)
                other = n - ok - unavailable - errors
                row = {"mode": mode, "rate": rate, "requests": n, "wall_s": round(wall, 1),
                       "p50_ms": round(percentile(lat, 50)), "p99_ms": round(percentile(lat, 99)),
                       "max_ms": round(max(lat, default=float("nan"))),
                       "share_2xx": ok / n if n else 0, "share_503": unavailable / n if n else 0,
                       "count_500": errors, "other": other,
                       "other_statuses": sorted({st for _, st, _ in results
                                                 if not (200 <= st < 300 or st in (500, 503))}),
                       "ddb_calls": proxy["requests"], "injected": proxy["injected_total"]}
                rows.append(row)
                cut = "*" if n < args.requests else " "
                line = (f"{mode:<9} {rate:>5.0%} {n:>7}{cut} {row['p50_ms']:>7} {row['p99_ms']:>7} "
                        f"{row['max_ms']:>7} {row['share_2xx']:>6.1%} {row['share_503']:>6.1%} "
                        f"{errors:>4} {other:>5} {proxy['requests']:>9} {proxy['injected_total']:>8}")
                lines.append(line)
                print(f"  {line}   ({wall:.1f} s)", file=sys.stderr, flush=True)
    finally:
        try:
            faults(faults_url, rate=0)
        except OSError:
            pass

    print()
    print(f"Mixed workload under injected DynamoDB throttling ({'+'.join(KINDS)}), "
          f"{args.threads} client threads, odm profile, debug build under cargo lambda watch:")
    print(header)
    for line in lines:
        print(line)
    if any(r["requests"] < args.requests for r in rows):
        print(f"* stopped after {args.cell_seconds:.0f} s, before all {args.requests} requests")
    others = sorted({s for r in rows for s in r["other_statuses"]})
    if others:
        print(f"(other: {others}; 0 = no answer within {CLIENT_TIMEOUT_S:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    bad = sum(r["count_500"] for r in rows)
    if bad:
        print(f"FAIL: {bad} responses were 500 (a DynamoDB failure must be a 503)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
