#!/usr/bin/env python3
"""HTTP/1 response rules of docs/HTTP1.md through the real binary: a scripted
origin (tests/http1/h1origin.py) answers each request with the bytes of one
response case of tests/http1/rules.py.

  bad_gateway(): the client gets weir's own 502 and weir closes that upstream
                 connection (a malformed response never leaves a connection
                 in the pool);
  respond(...):  the client gets the response described, and the upstream
                 connection is reused for the next request exactly when the
                 case says so;
  truncated():   the head went out but the body cannot be completed: weir
                 closes the client connection (a truncated message, never a
                 wrong one) and the upstream connection.
Plus: close-delimited bodies for HTTP/1.0 clients, and an idle pooled
connection that sends bytes nobody asked for."""

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


def conn_of(e, before, what):
    reqs = e.origin.wait_requests(before + 1)
    h.check(len(reqs) > before, "%s: the request never reached the origin" % what)
    h.eq(reqs[before].problems, [], what + ": forwarded request not canonical")
    return reqs[before].conn


def next_conn(e, what):
    """Upstream connection id that serves the next request."""
    before = e.origin.count()
    r = h.request(e.port, "GET", "/next")
    h.status(r, 200, what + ": the next request")
    return conn_of(e, before, what + ": the next request")


def run_case(e, i, case):
    rid, raw, (kind, arg) = case[0], case[1], case[2]
    method = case[3] if len(case) > 3 else "GET"
    close = case[4] if len(case) > 4 else False
    path = "/rsp/%d" % i
    what = "%s #%d %r" % (rid, i, raw[:120])
    e.origin.script[path] = (raw, close)
    before = e.origin.count()
    with h.Conn(e.port) as c:
        c.send(h.build_request(method, path))
        if kind == "truncated":
            try:
                r = c.read_response(method)
                h.fail("%s: got a complete response %r; expected the connection to close "
                       "mid-body" % (what, r))
            except h.ConnClosed:
                pass
            cid = conn_of(e, before, what)
            h.check(e.origin.wait_closed(cid), "%s: upstream connection %d still open" % (what, cid))
            return
        try:
            r = c.read_response(method)
        except h.ConnClosed as ex:
            h.fail("%s: connection closed without a response (%s)" % (what, ex))
        cid = conn_of(e, before, what)
        if kind == "bad_gateway":
            h.status(r, 502, what)
            h.check(r.get("X-Conn") is None, what + ": the 502 came from the origin")
            h.check(e.origin.wait_closed(cid),
                    "%s: weir kept upstream connection %d after a malformed response" % (what, cid))
            h.check(next_conn(e, what) != cid, what + ": the malformed connection was reused")
            return
        h.status(r, arg["status"], what)
        if "body" in arg:
            h.eq(r.body, arg["body"], what + ": body")
        for name, value in arg.get("headers", []):
            h.eq(r.get_all(name), [value], "%s: field %s (headers %r)" % (what, name, r.headers))
        for name in arg.get("absent", []):
            h.eq(r.get_all(name), [], "%s: field %s (headers %r)" % (what, name, r.headers))
        if "interim" in arg:
            h.eq(r.interim, arg["interim"], what + ": interim responses forwarded")
        if "chunked" in arg:
            h.eq(r.chunked, arg["chunked"], what + ": chunked to the client (%r)" % r.headers)
    if arg["reuse"]:
        time.sleep(0.02)
        h.check(not e.origin.is_closed(cid), what + ": upstream connection %d closed" % cid)
        h.eq(next_conn(e, what), cid, what + ": upstream connection reused")
    else:
        h.check(e.origin.wait_closed(cid), "%s: upstream connection %d kept" % (what, cid))


def test_response_rules(e):
    failures = []
    for i, case in enumerate(rules.RESPONSE_CASES):
        try:
            run_case(e, i, case)
        except h.TestFailure as ex:
            failures.append(str(ex))
        e.weir.check_alive(case[0])
    if failures:
        h.fail("%d of %d cases failed:\n  %s" % (len(failures), len(rules.RESPONSE_CASES),
                                                  "\n  ".join(failures)))


def test_close_delimited_http10_client(e):
    """RSP-CLOSE-DELIM: an HTTP/1.0 client gets the bytes as they are and a
    close (it cannot read chunked)."""
    e.origin.script["/close10"] = (b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nraw body bytes", True)
    with h.Conn(e.port) as c:
        c.send(b"GET /close10 HTTP/1.0\r\n\r\n")
        r = c.read_response("GET")
        h.status(r, 200, "RSP-CLOSE-DELIM HTTP/1.0 client")
        h.eq(r.body, b"raw body bytes", "RSP-CLOSE-DELIM HTTP/1.0 client: body")
        h.check(r.close_delimited, "RSP-CLOSE-DELIM HTTP/1.0 client: framing %r" % r.headers)
        h.eq(r.get_all("Transfer-Encoding"), [], "RSP-CLOSE-DELIM HTTP/1.0 client: TE")
        h.check("close" in ",".join(r.get_all("Connection")).lower(),
                "RSP-CLOSE-DELIM HTTP/1.0 client: Connection %r" % r.headers)


def test_idle_connection_sends_bytes(e):
    """RSP-IDLE-BYTES: bytes from a pooled connection that no request asked
    for: weir closes it instead of handing it to the next request."""
    before = e.origin.count()
    r = h.request(e.port, "GET", "/idle")
    h.status(r, 200, "RSP-IDLE-BYTES first request")
    cid = conn_of(e, before, "RSP-IDLE-BYTES")
    time.sleep(0.05)
    h.check(not e.origin.is_closed(cid), "RSP-IDLE-BYTES: connection closed before the test")
    # the origin's side of that connection speaks out of turn
    sock = e.origin.socks[cid - 1]
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled")
    h.check(e.origin.wait_closed(cid), "RSP-IDLE-BYTES: weir kept the connection")
    r = h.request(e.port, "GET", "/after-idle")
    h.status(r, 200, "RSP-IDLE-BYTES: the next request")
    h.eq(r.body, b"ok", "RSP-IDLE-BYTES: the next response is the origin's, not the stray bytes")


def test_still_serving(e):
    r = h.request(e.port, "GET", "/after")
    h.status(r, 200, "GET after all the response rules")


if __name__ == "__main__":
    h.main([test_response_rules, test_close_delimited_http10_client,
            test_idle_connection_sends_bytes, test_still_serving], setup=setup)
