#!/usr/bin/env python3
"""weir-waf in detection-only mode: attacks (one per class of
malicious.txt, first placement) go through to the origin, and are still
reported: the agent's stderr line (action detect, CRS rule ids, score over
the threshold) and weir's log of the verdict's audit fields (allow with
rules=[...]); weir counts no block."""

import os
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
    e.waf = w.start_waf(["--detection-only"])
    e.admin = h.free_port()
    cfg = w.config(e.origin, {"waf": {"socket": e.waf.sock, "timeout": "5s",
                                      "events": "[request_headers, request_body]"}},
                   ["{name: detect, path_prefix: /, upstream: app, agents: [waf]}"],
                   admin_port=e.admin)
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    w.wait_agent(e.port, "/warmup")
    return e


def blocks(e):
    # test_waf_crs checks that this sample counts blocks (it rises by one per
    # blocked attack there), so 0 here is not merely an absent sample
    return h.agent_metric(e.admin, "weir_agent_blocks_total", "waf")


def test_detect(e):
    done = set()
    n = 0
    for line, cls, places, payload in w.load_cases("malicious.txt"):
        if cls in done:
            continue
        done.add(cls)
        where = places[0]
        n += 1
        path = "/d/%d-%s" % (line, where)
        method, target, hdrs, body, pieces = w.place(path, where, payload)
        before = e.origin.stats()["requests"]
        r = w.send(e.port, method, target, hdrs, body, pieces)
        what = "malicious.txt:%d %s in %s" % (line, cls, where)
        h.status(r, 200, what + " (detection only: forwarded)")
        h.eq(e.origin.stats()["requests"] - before, 2, what + ": requests the origin saw "
             "(this one and /_stats)")
        d = e.waf.find(path)
        h.check(d is not None, what + ": no weir-waf detection line")
        h.eq(d["action"], "detect", what + ": agent action")
        h.check(d["rules"] and d["score"] >= 5, what + ": rules %r, score %d (threshold 5)"
                % (d["rules"], d["score"]))
        # weir logged the allow verdict with the CRS rule ids
        deadline = time.monotonic() + 3
        want = "request allow 0 rules=[%s]" % ",".join(map(str, d["rules"]))
        while want not in e.weir.proc.stderr():
            h.check(time.monotonic() < deadline, what + ": weir did not log %r" % want)
            time.sleep(0.05)
    h.eq(done, {"sqli", "xss", "lfi", "rce", "php", "scanner", "protocol"}, "classes tried")
    h.check(("weir_agent_blocks_total", '{agent="waf"}') in h.metrics(e.admin),
            "weir_agent_blocks_total{agent=waf} is not reported")
    h.eq(blocks(e), 0, "weir_agent_blocks_total{agent=waf} in detection-only mode")


if __name__ == "__main__":
    h.main([test_detect], setup=setup)
