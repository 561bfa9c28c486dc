#!/usr/bin/env python3
"""Agents failing: weir + weir-origin + the Python test agent.

Timeouts give the open and closed outcomes (504 / through) and a CANCEL
reason 2; five timeouts open the circuit breaker, a probe closes it; an agent
that breaks the protocol (garbage, a frame over max_frame, a verdict for an
unknown id or id 0, closing mid-frame, invalid MessagePack, an invalid
verdict, an unknown frame type, closing or resetting the connection) has its
connection dropped: the request and every other request it held get the
failure outcome at once, weir logs it, keeps serving, and reconnects; failed
handshakes; PING/PONG and a missing PONG; GOAWAY; a client gone sends
CANCEL 1; the agent killed with 200 requests in flight: every request gets
its configured outcome within the timeout, weir keeps serving, and the
restarted agent is used again within 1 s."""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True
import harness as h  # noqa: E402
sys.path.insert(0, os.path.join(h.REPO, "tests", "agent"))
import agent_it as ai  # noqa: E402


class Env:
    pass


def setup():
    ai.agent_python()
    e = Env()
    e.origin = h.start_origin()
    e.main = ai.start_agent("main", events="request_headers",
                            args=["--mark", "--log-open", "--log-pings"])
    e.body = ai.start_agent("body", events="request_headers,request_body",
                            args=["--mark", "--log-open"])
    e.kill = ai.start_agent("killme", events="request_headers", args=["--mark", "--log-open"])
    e.resp = ai.start_agent("respt", events="request_headers,response_headers")
    e.mif = ai.start_agent("mif", events="request_headers", args=["--max-in-flight", "2",
                                                                  "--log-open"])
    e.nopong = ai.start_agent("nopong", events="request_headers", args=["--no-pong",
                                                                        "--log-pings"])
    e.hello = {}
    for mode in ("none", "bad-version", "no-events", "garbage"):
        e.hello[mode] = ai.start_agent("hello-" + mode, args=["--hello", mode])
    m = e.main.unix
    agents = {
        "tc": {"socket": m, "timeout": "300ms", "failure": "closed"},
        "to": {"socket": m, "timeout": "300ms", "failure": "open"},
        "tb": {"socket": e.body.unix, "timeout": "300ms", "failure": "closed"},
        "bl": {"socket": e.body.unix, "timeout": "3s", "failure": "closed"},
        "brk": {"socket": m, "timeout": "200ms", "failure": "closed"},
        "pc": {"socket": m, "timeout": "3s", "failure": "closed", "reconnect_max": "200ms"},
        "po": {"socket": m, "timeout": "3s", "failure": "open", "reconnect_max": "200ms"},
        "pg": {"socket": m, "timeout": "1s", "ping_interval": "100ms"},
        "kc": {"socket": e.kill.unix, "timeout": "2s", "failure": "closed"},
        "ko": {"socket": e.kill.unix, "timeout": "2s", "failure": "open"},
        "np": {"socket": e.nopong.unix, "timeout": "50ms", "ping_interval": "100ms"},
        "rtc": {"socket": e.resp.unix, "timeout": "300ms", "failure": "closed"},
        "rto": {"socket": e.resp.unix, "timeout": "300ms", "failure": "open"},
        "mif": {"socket": e.mif.unix, "timeout": "3s", "failure": "closed"},
    }
    for mode, a in e.hello.items():
        agents["h-" + mode] = {"socket": a.unix, "timeout": "300ms"}
    routes = ["{name: plain, path_prefix: /o/, upstream: app}"]
    routes += ["{name: %s, path_prefix: /%s/, upstream: app, agents: [%s]}" % (n, n, n)
               for n in agents]
    e.admin = h.free_port()
    e.weir = h.start_weir(ai.config(e.origin, agents, routes,
                                    top={"admin": "{address: 127.0.0.1:%d}" % e.admin}))
    e.port = e.weir.port
    for n in ("tc", "to", "tb", "brk", "pc", "po", "pg", "kc", "ko"):
        wait_agent_used(e, n, 5.0)
    return e


def wait_agent_used(e, route, timeout, what=None):
    """Poll GET /route/ until the agent answers it (X-Agent-Seen); returns
    (seconds, response)."""
    t0 = time.monotonic()
    last = None
    while True:
        r = h.request(e.port, "GET", "/%s/ping?size=1" % route, timeout=10)
        if r.status == 200 and r.get("X-Agent-Seen"):
            return time.monotonic() - t0, r
        last = r
        if time.monotonic() - t0 > timeout:
            raise h.TestFailure("%s: /%s/ not answered by its agent within %.1fs (last: %d %r)"
                                % (what or "agent", route, timeout, last.status, last.headers))
        time.sleep(0.02)


def timed(port, method, target, headers=(), **kw):
    t0 = time.monotonic()
    r = h.request(port, method, target, headers=list(headers), timeout=10, **kw)
    return r, time.monotonic() - t0


def timeouts(e, agent):
    return h.agent_metric(e.admin, "weir_agent_timeouts_total", agent)


def test_timeouts(e):
    before = timeouts(e, "tc")
    r, dt = timed(e.port, "GET", "/tc/stall?size=5", [("X-Test-Id", "to-c")] +
                  ai.hdrs(action="stall"))
    h.status(r, 504, "stalled agent, failure closed: 504 (agent timeout)")
    h.check(dt >= 0.25, "504 after %.2fs; the agent timeout is 300ms" % dt)
    h.eq(timeouts(e, "tc") - before, 1, "weir_agent_timeouts_total{agent=tc} after the 504")
    h.check(r.get("X-Origin-Conn") is None, "the 504 came from the origin")
    rec = e.main.wait_tag("to-c")
    h.eq((rec["closed"], rec["cancel_reason"]), ("cancel", 2), "CANCEL reason 2 (timeout)")
    wait_agent_used(e, "tc", 2)
    before = timeouts(e, "to")
    r, dt = timed(e.port, "GET", "/to/stall?size=5", [("X-Test-Id", "to-o")] +
                  ai.hdrs(action="stall"))
    h.status(r, 200, "stalled agent, failure open: the request goes on")
    h.eq(len(r.body), 5, "origin body (open)")
    h.check(r.get("X-Origin-Conn") is not None, "failure open: not from the origin")
    h.check(dt >= 0.25, "open outcome after %.2fs; the agent timeout is 300ms" % dt)
    h.eq(timeouts(e, "to") - before, 1, "weir_agent_timeouts_total{agent=to} (open)")
    rec = e.main.wait_tag("to-o")
    h.eq((rec["closed"], rec["cancel_reason"]), ("cancel", 2), "CANCEL reason 2 (open)")
    wait_agent_used(e, "to", 2)
    # an answer inside the timeout is used
    r, _ = timed(e.port, "GET", "/tc/slow?size=1", [("X-Test-Id", "to-slow")] +
                  ai.hdrs(action="block", status=429, delay_ms=100))
    h.status(r, 429, "verdict 100ms late, timeout 300ms: the verdict counts")
    # request_body phase: the agent stalls after the whole body
    before = e.origin.stats()["requests"]
    r, _ = timed(e.port, "POST", "/tb/stall", [("X-Test-Id", "to-body")] +
                  ai.hdrs(action="stall"), body=h.rand_bytes(200000))
    h.status(r, 504, "agent stalls after the body (buffer mode): 504")
    h.eq(e.origin.stats()["requests"] - before - 1, 0, "origin requests for a body-phase 504")
    rec = e.body.wait_tag("to-body")
    h.eq((rec["body_bytes"], rec["cancel_reason"]), (200000, 2),
         "agent got the whole body, then CANCEL 2")
    # a late verdict after the CANCEL is ignored by weir (crossing is legal)
    r, _ = timed(e.port, "GET", "/tc/late?size=1", [("X-Test-Id", "to-late")] +
                  ai.hdrs(action="allow", delay_ms=400))
    h.status(r, 504, "verdict after the timeout: 504 stands")
    wait_agent_used(e, "tc", 2, "after a late verdict")
    e.weir.check_alive("timeouts")


def test_response_phase_timeouts(e):
    r, _ = timed(e.port, "GET", "/rtc/x?size=10", [("X-Test-Id", "rt-c")] +
                  ai.hdrs(response_action="stall"))
    h.status(r, 504, "response-phase verdict never comes, failure closed")
    rec = e.resp.wait_tag("rt-c")
    h.eq(rec["cancel_reason"], 2, "CANCEL reason 2 after the response-phase timeout")
    r, _ = timed(e.port, "GET", "/rto/x?size=10", [("X-Test-Id", "rt-o")] +
                  ai.hdrs(response_action="stall"))
    h.status(r, 200, "response-phase verdict never comes, failure open: the response goes on")
    h.eq(len(r.body), 10, "origin body (open, response phase)")


def test_max_in_flight(e):
    """An agent allowing 2 open ids per connection never sees a third (the
    agent checks). What weir does with the others is not specified; this
    prints it."""
    out = {}

    def one(i):
        try:
            r = h.request(e.port, "GET", "/mif/x%d?size=1" % i, timeout=10, headers=[
                ("X-Test-Id", "mif-%d" % i)] + ai.hdrs(delay_ms=300))
            out[i] = r.status
        except Exception as ex:     # noqa: BLE001
            out[i] = repr(ex)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(15)
    e.mif.check_no_violations(what="max_in_flight 2")
    h.eq(len(out), 8, "requests that finished: %r" % out)
    h.check(all(v in (200, 503) for v in out.values()), "statuses %r" % out)
    h.check(list(out.values()).count(200) >= 2, "statuses %r" % out)
    print("    (8 concurrent requests, agent max_in_flight 2: %s)" %
          sorted(out.values()))


def test_circuit_breaker(e):
    for i in range(5):
        r, _ = timed(e.port, "GET", "/brk/stall%d" % i, [("X-Test-Id", "brk-%d" % i)] +
                      ai.hdrs(action="stall"))
        h.status(r, 504, "timeout %d of 5" % (i + 1))
    r, _ = timed(e.port, "GET", "/brk/open?size=1", [("X-Test-Id", "brk-open")])
    h.status(r, (503, 504), "breaker open: the failure outcome without asking the agent")
    print("    (breaker open: %d)" % r.status)
    time.sleep(0.3)
    h.eq(e.main.by_tag("brk-open", "open"), [], "a request was sent to the agent while the "
         "breaker was open")
    time.sleep(1.0)
    r, _ = timed(e.port, "GET", "/brk/probe?size=1", [("X-Test-Id", "brk-probe")])
    h.status(r, 200, "after one second: the probe goes to the agent")
    h.check(r.get("X-Agent-Seen"), "probe not answered by the agent")
    r, _ = timed(e.port, "GET", "/brk/after?size=1", [("X-Test-Id", "brk-after")])
    h.status(r, 200, "breaker closed by the probe")
    h.check(r.get("X-Agent-Seen"), "request after the probe not seen by the agent")


BREAK_ACTIONS = ["garbage", "oversize", "unknown-id", "zero-id", "close-mid-frame",
                 "bad-msgpack", "bad-verdict", "bad-status", "bad-redirect",
                 "redirect-no-location", "bad-mutation",
                 "bad-header-value", "bad-type", "close", "rst"]


def _stall_bg(e, route, tags):
    out = {}

    def one(tag):
        try:
            t0 = time.monotonic()
            r = h.request(e.port, "GET", "/%s/held?size=2" % route, timeout=10,
                          headers=[("X-Test-Id", tag)] + ai.hdrs(action="stall"))
            out[tag] = (r.status, time.monotonic(), time.monotonic() - t0, r)
        except Exception as ex:     # noqa: BLE001
            out[tag] = ex
    ts = [threading.Thread(target=one, args=(t,), daemon=True) for t in tags]
    for t in ts:
        t.start()
    return ts, out


def _break_one(e, route, action, outcome):
    held = ["%s-%s-held%d" % (route, action, i) for i in range(3)]
    ts, out = _stall_bg(e, route, held)
    opens = [e.main.wait(lambda r, t=t: r.get("tag") == t, 5, "open",
                         "REQUEST_HEADERS of %s" % t) for t in held]
    conn = opens[0]["conn"]
    errlen = len(e.weir.proc.stderr())
    tag = "%s-%s" % (route, action)
    tmo_before = timeouts(e, route)
    try:
        r = h.request(e.port, "GET", "/%s/bad?size=3" % route, timeout=10,
                      headers=[("X-Test-Id", tag)] + ai.hdrs(action=action))
    except h.TestFailure as ex:
        raise h.TestFailure("%s on /%s/: %s" % (action, route, ex))
    for t in ts:
        t.join(10)
    what = "agent sends %s (failure %s)" % (action, "closed" if outcome == 503 else "open")
    h.status(r, outcome, what)
    for t in held:
        res = out.get(t)
        h.check(isinstance(res, tuple), "%s: held request %s: %r" % (what, t, res))
        h.eq(res[0], outcome, "%s: a request held on the same connection" % what)
    # answered because the connection was dropped, not by the 3 s timeout
    h.eq(timeouts(e, route) - tmo_before, 0, "%s: agent timeouts counted" % what)
    # the agent's connection was closed by weir (or by the agent itself)
    e.main.wait(lambda x: x.get("conn") == conn, 3, "conn_close",
                "conn_close of connection %d after %s" % (conn, action))
    # weir logs it
    deadline = time.monotonic() + 2
    while len(e.weir.proc.stderr()) == errlen and time.monotonic() < deadline:
        time.sleep(0.02)
    h.check(len(e.weir.proc.stderr()) > errlen, "%s: weir logged nothing" % what)
    e.weir.check_alive(what)
    # weir still serves, and reconnects
    r2 = h.request(e.port, "GET", "/o/after?size=1")
    h.status(r2, 200, "plain route after " + what)
    secs, r3 = wait_agent_used(e, route, 3.0, "after " + what)
    h.check(("conn=%d " % conn) not in r3.get("X-Agent-Seen"),
            "%s: the broken connection is still used: %s" % (what, r3.get("X-Agent-Seen")))


def test_protocol_errors_closed(e):
    for action in BREAK_ACTIONS:
        _break_one(e, "pc", action, 503)


def test_protocol_errors_open(e):
    for action in ("garbage", "oversize", "unknown-id", "close-mid-frame", "bad-verdict"):
        _break_one(e, "po", action, 200)


def test_handshake_failures(e):
    time.sleep(1.5)     # weir gives a silent agent 1 s, then retries
    for mode, a in e.hello.items():
        r, _ = timed(e.port, "GET", "/h-%s/x?size=1" % mode, [("X-Test-Id", "hs-" + mode)])
        h.status(r, 503, "agent whose handshake fails (%s): 503 agent unavailable" % mode)
        h.eq(a.by_tag("hs-" + mode), [], "a request sent after a failed handshake (%s)" % mode)
        closes = a.records("conn_close")
        h.check(len(closes) >= 1, "%s: weir never closed the connection" % mode)
        h.check(len(a.records("conn_open")) >= 2, "%s: weir did not reconnect" % mode)
        if mode == "none":
            lived = closes[0]["lived_ms"]
            h.check(800 <= lived <= 3000, "no HELLO_REPLY: connection closed after %.0f ms, "
                    "expected about 1 s" % lived)
    e.weir.check_alive("handshake failures")


def test_ping(e):
    # PINGs on an idle connection with ping_interval 100ms
    e.main.wait_count("ping", 2, 3)
    wait_agent_used(e, "pg", 1, "after pings")
    # no PONG: weir closes the connection after max(timeout x 10, 1 s) and reconnects
    c = e.nopong.wait(lambda x: True, 4, "conn_close", "conn_close of the agent without PONG")
    h.check(c["pings"] >= 1, "connection closed before any PING: %r" % c)
    h.check(900 <= c["lived_ms"] <= 3500, "no PONG: closed after %.0f ms, expected ~1 s" %
            c["lived_ms"])
    e.nopong.wait_count("conn_open", 2, 3)


def test_goaway(e):
    r = h.request(e.port, "GET", "/pc/goaway?size=1", headers=[("X-Test-Id", "ga")] +
                  ai.hdrs(action="goaway"))
    h.status(r, 200, "allowed after GOAWAY")
    rec = e.main.wait_tag("ga")
    conn = rec["conn"]
    e.main.wait(lambda x: x.get("conn") == conn, 3, "conn_close",
                "weir closing the connection after GOAWAY")
    secs, r2 = wait_agent_used(e, "pc", 2, "after GOAWAY")
    h.check(("conn=%d " % conn) not in r2.get("X-Agent-Seen"),
            "the connection that sent GOAWAY is still used")


def test_client_gone(e):
    """The client closes while the agent holds its request: CANCEL reason 1,
    at once (not when the 3 s timeout fires)."""
    c = h.Conn(e.port)
    c.send(h.build_request("GET", "/pc/gone", headers=[("X-Test-Id", "gone")] +
                           ai.hdrs(action="stall")))
    e.main.wait(lambda r: r.get("tag") == "gone", 3, "open")
    t0 = time.monotonic()
    c.close()
    rec = e.main.wait_tag("gone", 5)
    dt = time.monotonic() - t0
    h.eq((rec["closed"], rec["cancel_reason"]), ("cancel", 1),
         "CANCEL reason 1 (client gone) for a GET waiting for its verdict (came after %.2fs)"
         % dt)


def test_client_gone_mid_body(e):
    c = h.Conn(e.port)
    raw = h.build_request("POST", "/bl/gone", body=h.rand_bytes(1 << 20),
                          headers=[("X-Test-Id", "gone-body")])
    c.send(raw[:300000])
    e.body.wait(lambda r: r.get("tag") == "gone-body", 3, "open")
    time.sleep(0.1)
    t0 = time.monotonic()
    c.close()
    rec = e.body.wait_tag("gone-body", 5)
    dt = time.monotonic() - t0
    h.eq((rec["closed"], rec["cancel_reason"]), ("cancel", 1),
         "CANCEL reason 1 (client gone mid-body) (came after %.2fs)" % dt)


def test_kill_with_200_in_flight(e):
    n = 100
    reqs = []
    for route in ("kc", "ko"):
        for i in range(n):
            reqs.append(h.build_request("GET", "/%s/k%d?size=2" % (route, i), headers=[
                ("X-Test-Id", "kill-%s-%d" % (route, i))] + ai.hdrs(action="stall")))
    res = {}
    t = threading.Thread(target=lambda: res.setdefault("r", ai.many(e.port, reqs, timeout=20)),
                         daemon=True)
    t.start()
    e.kill.wait_count("open", 2 * n, 10, pred=lambda r: (r.get("tag") or "").startswith("kill-"))
    tmo_before = timeouts(e, "kc") + timeouts(e, "ko")
    e.kill.kill()
    t.join(25)
    results = res.get("r")
    h.check(results is not None, "the 200 requests did not finish")
    for k, r in enumerate(results):
        route = "kc" if k < n else "ko"
        want = 503 if route == "kc" else 200
        h.check(r.error is None, "request %d (%s): %s" % (k, route, r.error))
        h.eq(r.status, want, "request %d on /%s/ after the agent was killed" % (k, route))
        if route == "ko":
            h.check(r.get("X-Origin-Conn") is not None, "failure open: not from the origin")
    # answered because the connection was lost, not by the 2 s agent timeout
    h.eq(timeouts(e, "kc") + timeouts(e, "ko") - tmo_before, 0,
         "agent timeouts counted for the requests held when the agent was killed")
    # weir keeps serving
    e.weir.check_alive("agent killed")
    r = h.request(e.port, "GET", "/o/x?size=3")
    h.status(r, 200, "plain route while the agent is down")
    r, _ = timed(e.port, "GET", "/kc/down?size=1")
    h.status(r, 503, "closed route while the agent is down: 503")
    r, _ = timed(e.port, "GET", "/ko/down?size=1")
    h.status(r, 200, "open route while the agent is down")
    time.sleep(1.0)     # let weir's reconnect back-off reach its ceiling
    # restart: used again within 1 s of listening
    e.kill.start()
    t_ready = e.kill.t_ready
    secs, r = wait_agent_used(e, "kc", 5, "restarted agent")
    used = time.monotonic() - t_ready
    h.check(used <= 1.0, "the restarted agent was used again %.2fs after it listened (max 1 s)"
            % used)
    print("    (restarted agent used again after %.0f ms)" % (used * 1000))
    wait_agent_used(e, "ko", 2, "restarted agent (open route)")


def test_no_violations(e):
    e.weir.check_alive("the failure tests")
    for a in (e.main, e.body, e.kill, e.nopong, e.resp, e.mif):
        a.check_no_violations()


if __name__ == "__main__":
    h.main([test_timeouts, test_response_phase_timeouts, test_max_in_flight,
            test_circuit_breaker, test_protocol_errors_closed, test_protocol_errors_open,
            test_handshake_failures, test_ping, test_goaway, test_client_gone,
            test_client_gone_mid_body, test_kill_with_200_in_flight, test_no_violations],
           setup=setup)
