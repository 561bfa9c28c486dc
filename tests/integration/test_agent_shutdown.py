#!/usr/bin/env python3
"""Agents and weir's graceful stop: a request whose verdict comes within
shutdown_timeout completes; one the agent holds past it ends with the
connection closed, the agent gets CANCEL reason 6 (shutdown), and weir exits
0 (no crash)."""

import os
import signal
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
    e.agent = ai.start_agent("stop", events="request_headers,request_body",
                             args=["--mark", "--log-open"])
    return e


def start(e):
    cfg = ai.config(e.origin, {"waf": {"socket": e.agent.unix, "timeout": "10s"}},
                    ["{name: a, path_prefix: /a/, upstream: app, agents: [waf]}"],
                    top={"shutdown_timeout": "1s"})
    w = h.start_weir(cfg)
    deadline = time.monotonic() + 5
    while h.request(w.port, "GET", "/a/warm").status != 200:
        if time.monotonic() > deadline:
            raise h.TestFailure("agent route not ready")
        time.sleep(0.05)
    return w


def _bg(port, method, target, headers, body=None):
    out = {}

    def run():
        try:
            out["r"] = h.request(port, method, target, headers=headers, body=body, timeout=10)
        except Exception as ex:     # noqa: BLE001
            out["r"] = ex
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_verdict_within_grace(e):
    w = start(e)
    t, out = _bg(w.port, "GET", "/a/grace?size=4", [("X-Test-Id", "grace")] +
                 ai.hdrs(delay_ms=300))
    e.agent.wait(lambda r: r.get("tag") == "grace", 3, "open")
    w.proc.signal(signal.SIGTERM)
    t.join(10)
    r = out.get("r")
    h.check(isinstance(r, h.Response), "request during the graceful stop: %r" % (r,))
    h.status(r, 200, "verdict 300 ms after SIGTERM (shutdown_timeout 1s)")
    rc = w.proc.wait(5)
    h.eq(rc, 0, "weir exit status after SIGTERM")


def test_held_past_grace(e):
    w = start(e)
    t, out = _bg(w.port, "GET", "/a/held?size=4", [("X-Test-Id", "held")] +
                 ai.hdrs(action="stall"))
    t2, out2 = _bg(w.port, "POST", "/a/heldbody", [("X-Test-Id", "heldbody")] +
                   ai.hdrs(action="stall"), body=b"q" * 100000)
    e.agent.wait(lambda r: r.get("tag") == "held", 3, "open")
    e.agent.wait(lambda r: r.get("tag") == "heldbody", 3, "open")
    t0 = time.monotonic()
    w.proc.signal(signal.SIGTERM)
    rc = w.proc.wait(6)
    dt = time.monotonic() - t0
    t.join(5)
    t2.join(5)
    h.check(rc is not None, "weir still running 6 s after SIGTERM (shutdown_timeout 1s)")
    h.eq(rc, 0, "weir exit status after SIGTERM with requests held by the agent "
         "(stderr tail: %r)" % w.proc.stderr()[-300:])
    h.check(dt < 4.0, "weir took %.2fs to stop" % dt)
    # the held requests got no answer: their connections were closed
    for name, o in (("held", out), ("heldbody", out2)):
        r = o.get("r")
        h.check(r is not None and not (isinstance(r, h.Response) and r.status == 200),
                "%s: a request held past shutdown_timeout was answered %r" % (name, r))
    for tag in ("held", "heldbody"):
        rec = e.agent.wait_tag(tag, 3)
        h.eq((rec["closed"], rec["cancel_reason"]), ("cancel", 6),
             "%s: the agent is told CANCEL reason 6 (shutdown)" % tag)


def test_no_violations(e):
    e.agent.check_no_violations()


if __name__ == "__main__":
    h.main([test_verdict_within_grace, test_held_past_grace, test_no_violations], setup=setup)
