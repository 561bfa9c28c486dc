#!/usr/bin/env python3
"""HTTP/1 request rules of docs/HTTP1.md through the real binary: every
request case of tests/http1/rules.py goes to weir on a fresh connection; a
recording origin (tests/http1/h1origin.py) stands behind it and checks that
what weir forwards is canonical.

  reject(status): weir answers `status` itself with Connection: close, closes
                  the connection, and no complete request reaches the origin;
  forward(...):   the origin receives exactly one request, canonical, with
                  the method, target, Host, fields and body the case names.
"""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http1"))
import harness as h  # noqa: E402
import h1origin  # noqa: E402
import rules  # noqa: E402


def setup():
    return h1origin.setup(h)


def show(raw):
    r = repr(raw)
    return r if len(r) < 160 else r[:150] + "...'"


def run_case(e, rid, raw, exp):
    kind, arg = exp
    what = "%s %s" % (rid, show(raw))
    before = e.origin.count()
    method = h1origin.method_of(raw)
    with h.Conn(e.port) as c:
        c.send(raw)
        try:
            r = c.read_response(method)
        except h.ConnClosed as ex:
            h.fail("%s: connection closed without a response (%s)" % (what, ex))
        if kind == "reject":
            h.status(r, arg, what)
            h.check(r.get("X-Conn") is None, "%s: the answer came from the origin" % what)
            h.check("close" in ",".join(r.get_all("Connection")).lower(),
                    "%s: %d without Connection: close (%r)" % (what, r.status, r.headers))
            c.expect_closed(what=what)
            time.sleep(0.01)
            h.eq(e.origin.count(), before, "%s: requests that reached the origin" % what)
            return
        h.status(r, 200, what)
        h.eq(r.body, b"ok", what + ": response body")
    reqs = e.origin.wait_requests(before + 1)
    h.eq(len(reqs) - before, 1, "%s: requests that reached the origin" % what)
    h1origin.check_forwarded(h, reqs[before], arg, what)


def test_request_rules(e):
    failures = []
    for rid, raw, exp in rules.REQUEST_CASES:
        try:
            run_case(e, rid, raw, exp)
        except h.TestFailure as ex:
            failures.append(str(ex))
        e.weir.check_alive(rid)
    if failures:
        h.fail("%d of %d cases failed:\n  %s" % (len(failures), len(rules.REQUEST_CASES),
                                                  "\n  ".join(failures)))


def test_still_serving(e):
    r = h.request(e.port, "GET", "/after")
    h.status(r, 200, "GET after all the request rules")


if __name__ == "__main__":
    h.main([test_request_rules, test_still_serving], setup=setup)
