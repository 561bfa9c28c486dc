#!/usr/bin/env python3
"""weir-waf saturated, then killed: the route it guards fails closed (503)
while a route without the WAF keeps serving. Saturation: the agent allows
2 open requests per connection (--max-in-flight 2), weir runs one reactor,
two requests whose bodies never finish hold both; a third guarded request
is refused at once, an unguarded one is served; the held ones complete
once their bodies arrive. Then SIGKILL: guarded 503, unguarded 200."""

import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import waf_it as w  # noqa: E402
from waf_it import h  # noqa: E402


class Env:
    pass


def setup():
    w.waf_bin()
    e = Env()
    e.origin = h.start_origin()
    e.waf = w.start_waf(["--max-in-flight", "2"])
    cfg = w.config(e.origin, {"waf": {"socket": e.waf.sock, "timeout": "2s",
                                      "failure": "closed", "reconnect_max": "200ms",
                                      "events": "[request_headers, request_body]"}},
                   ["{name: guarded, path_prefix: /w/, upstream: app, agents: [waf]}",
                    "{name: plain, path_prefix: /p/, upstream: app}"], workers=1)
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    w.wait_agent(e.port, "/w/warmup")
    return e


def test_saturated(e):
    held = []
    body = b"name=alice&comment=" + b"x" * 80
    for i in range(2):
        c = h.Conn(e.port)
        c.send(h.build_request("POST", "/w/held-%d" % i,
                               w.BROWSER + [("Content-Type", "application/x-www-form-urlencoded"),
                                            ("Content-Length", str(len(body)))]) + body[:20])
        held.append(c)
    time.sleep(0.3)     # both ids open at the agent
    try:
        r = h.request(e.port, "GET", "/w/third", headers=w.BROWSER)
        # 503: no usable connection (a wait for the agent would end in 504)
        h.status(r, 503, "guarded request while the agent's in-flight limit is reached")
        for i in range(5):
            r = h.request(e.port, "GET", "/p/plain-%d?size=100" % i, headers=w.BROWSER)
            h.status(r, 200, "unguarded route while the WAF is saturated")
        for i, c in enumerate(held):
            c.send(body[20:])
            r = c.read_response("POST")
            h.status(r, 200, "held request %d once its body came" % i)
            h.eq(r.get("X-Request-Bytes"), str(len(body)), "held request %d body" % i)
    finally:
        for c in held:
            c.close()
    r = h.request(e.port, "GET", "/w/after?q=hello", headers=w.BROWSER)
    h.status(r, 200, "guarded request once the slots are free")


def test_killed(e):
    r = h.request(e.port, "GET", "/w/x?id=1%27%20UNION%20SELECT%20password%20FROM%20users--",
                  headers=w.BROWSER)
    h.status(r, 403, "attack blocked while the WAF runs")
    e.waf.proc.signal(signal.SIGKILL)
    e.waf.proc.wait(5)
    h.check(not e.waf.proc.alive(), "weir-waf still alive after SIGKILL")
    for i in range(10):
        r = h.request(e.port, "GET", "/w/k-%d?id=1%%27%%20UNION%%20SELECT%%201--" % i,
                      headers=w.BROWSER)
        h.status(r, 503, "guarded route with the WAF dead (failure: closed)")
        r = h.request(e.port, "GET", "/p/k-%d?size=10" % i, headers=w.BROWSER)
        h.status(r, 200, "unguarded route with the WAF dead")
    e.weir.check_alive("the WAF was killed")


if __name__ == "__main__":
    h.main([test_saturated, test_killed], setup=setup)
