#!/usr/bin/env python3
"""Agents under load: 1,000 concurrent requests over 2 agent connections
(one reactor, connections: 2), all held by the agent until every one of them
is open (a barrier), then answered in random order, each with its own
verdict: blocks with their own status and body, allows with their own
response field and origin body. Then the same through 2 reactors with a
request body on each request (body_mode buffer)."""

import os
import sys
import time

sys.dont_write_bytecode = True
import harness as h  # noqa: E402
sys.path.insert(0, os.path.join(h.REPO, "tests", "agent"))
import agent_it as ai  # noqa: E402

N = 1000
STATUSES = [400, 401, 402, 403, 405, 406, 409, 410, 418, 422, 429, 451, 500, 502, 503]


class Env:
    pass


def setup():
    ai.agent_python()
    e = Env()
    e.origin = h.start_origin()
    e.agent = ai.start_agent("load", events="request_headers", args=["--max-in-flight", "4096"])
    e.bodyagent = ai.start_agent("loadbody", events="request_headers,request_body")
    cfg = ai.config(e.origin, {
        "waf": {"socket": e.agent.unix, "timeout": "20s", "connections": 2},
        "wafb": {"socket": e.bodyagent.unix, "timeout": "20s", "connections": 1,
                 "body_mode": "buffer"},
    }, [
        "{name: load, path_prefix: /l/, upstream: app, agents: [waf]}",
        "{name: loadbody, path_prefix: /b/, upstream: app, agents: [wafb]}",
    ], upstream={"keepalive": 256})
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    deadline = time.monotonic() + 5
    while h.request(e.port, "GET", "/l/warm").status != 200:
        if time.monotonic() > deadline:
            raise h.TestFailure("agent route not ready")
        time.sleep(0.05)
    cfg2 = ai.config(e.origin, {
        "wafb": {"socket": e.bodyagent.unix, "timeout": "20s", "connections": 1,
                 "body_mode": "buffer"},
    }, ["{name: loadbody, path_prefix: /b/, upstream: app, agents: [wafb]}"],
        workers=2, upstream={"keepalive": 256})
    e.weir2 = h.start_weir(cfg2)
    deadline = time.monotonic() + 5
    while h.request(e.weir2.port, "GET", "/b/warm").status != 200:
        if time.monotonic() > deadline:
            raise h.TestFailure("agent route (2 reactors) not ready")
        time.sleep(0.05)
    return e


def verdict_of(i):
    """Request i: odd -> allow (own resp field, own body size); even -> block
    with its own status and body."""
    if i % 2:
        return ai.hdrs(resp_set="X-Verdict: allow-%d" % i)
    return ai.hdrs(action="block", status=STATUSES[i % len(STATUSES)], body="blocked #%d" % i,
                   header="X-Verdict: block-%d" % i)


def check_results(results, what, body_sizes=None):
    bad = []
    for i, r in enumerate(results):
        if r.error is not None:
            bad.append("%d: %s" % (i, r.error))
            continue
        if i % 2:
            ok = (r.status == 200 and r.get("X-Verdict") == "allow-%d" % i and
                  len(r.body) == i % 97)
            if body_sizes is not None:
                ok = ok and r.get("X-Request-Bytes") == str(body_sizes[i])
        else:
            ok = (r.status == STATUSES[i % len(STATUSES)] and r.body == b"blocked #%d" % i and
                  r.get("X-Verdict") == "block-%d" % i)
        if not ok:
            bad.append("%d: %s %r %r" % (i, r.status, r.get("X-Verdict"), r.body[:40]))
    h.eq(bad[:10], [], "%s: requests without their own verdict (%d of %d)" %
         (what, len(bad), len(results)))


def test_1000_concurrent_two_connections(e):
    reqs = [h.build_request("GET", "/l/r%d?size=%d" % (i, i % 97), headers=[
        ("X-Test-Id", "c-%d" % i), ("X-Agent-Barrier", str(N)),
        ("X-Agent-Barrier-Key", "c"), ("X-Agent-Barrier-Ms", "15000")] + verdict_of(i))
        for i in range(N)]
    t0 = time.monotonic()
    results = ai.many(e.port, reqs, timeout=40)
    dt = time.monotonic() - t0
    b = e.agent.wait(lambda r: r.get("key") == "c", 5, "barrier")
    h.check(b["reached"], "the agent never had all %d requests open at once: %r" % (N, b))
    h.eq(len(b["conns"]), 2, "agent connections the %d requests came on" % N)
    check_results(results, "1000 concurrent")
    recs = e.agent.wait_count("request", N, 10, pred=lambda r: (r.get("tag") or "")
                              .startswith("c-"))
    per_conn = {}
    for r in recs:
        per_conn[r["conn"]] = per_conn.get(r["conn"], 0) + 1
    h.eq(len(per_conn), 2, "connections used")
    h.check(min(per_conn.values()) >= N // 10, "load very uneven over the 2 connections: %r" %
            per_conn)
    print("    (%d requests in %.2fs; per agent connection %r)" % (N, dt, per_conn))
    e.agent.check_no_violations()
    e.weir.check_alive("1000 concurrent")


def test_1000_with_bodies_two_reactors(e):
    sizes = [(i * 7919) % 20000 for i in range(N)]
    reqs = [h.build_request("POST", "/b/r%d?size=%d" % (i, i % 97), body=h.rand_bytes(sizes[i], i),
                            chunked=bool(i % 3 == 0), chunk_sizes=3000, headers=[
        ("X-Test-Id", "b-%d" % i), ("X-Agent-Barrier", str(N)),
        ("X-Agent-Barrier-Key", "b"), ("X-Agent-Barrier-Ms", "15000")] + verdict_of(i))
        for i in range(N)]
    results = ai.many(e.weir2.port, reqs, timeout=40)
    b = e.bodyagent.wait(lambda r: r.get("key") == "b", 5, "barrier")
    h.check(b["reached"], "the agent never had all %d requests open at once: %r" % (N, b))
    h.eq(len(b["conns"]), 2, "agent connections (2 reactors x 1)")
    check_results(results, "1000 concurrent with bodies", sizes)
    recs = e.bodyagent.wait_count("request", N, 10,
                                  pred=lambda r: (r.get("tag") or "").startswith("b-"))
    bad = []
    for r in recs:
        i = int(r["tag"][2:])
        if r["body_bytes"] != sizes[i] or r["body_sha256"] != h.sha256(h.rand_bytes(sizes[i], i)):
            bad.append((i, r["body_bytes"], sizes[i]))
    h.eq(bad[:10], [], "bodies the agent saw (wrong: %d)" % len(bad))
    e.bodyagent.check_no_violations()
    e.weir2.check_alive("1000 concurrent with bodies")


if __name__ == "__main__":
    h.main([test_1000_concurrent_two_connections, test_1000_with_bodies_two_reactors],
           setup=setup)
