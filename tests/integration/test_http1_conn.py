#!/usr/bin/env python3
"""HTTP/1 connection rules of docs/HTTP1.md through the real binary: HTTP/1.0
keep-alive, bytes after a request on a connection that is closing, pipelined
messages re-framed one by one, Expect: 100-continue and its races, and an
upstream that answers before the request body is complete. A recording
origin (tests/http1/h1origin.py) checks what weir forwards."""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http1"))
import harness as h  # noqa: E402
import h1origin  # noqa: E402


def setup():
    return h1origin.setup(h, routes=["{path_prefix: /small/, upstream: app, max_body: 10}",
                                     "{upstream: app}"])


def forwarded_since(e, before, n, what, settle=0.1):
    """Exactly n canonical requests reached the origin since `before`."""
    reqs = e.origin.wait_requests(before + n)
    time.sleep(settle)
    reqs = e.origin.wait_requests(before + n, timeout=0)
    h.eq([r.target for r in reqs[before:]][n:], [], what + ": requests that should not have "
         "reached the origin")
    h.eq(len(reqs) - before, n, what + ": requests forwarded")
    for r in reqs[before:]:
        h.eq(r.problems, [], "%s: %s forwarded non-canonical (%r)" % (what, r.target, r.raw_head))
    return reqs[before:]


def closes(c, what):
    c.expect_closed(what=what)


def test_http10_close(e):
    """REQ-HTTP10-CLOSE: HTTP/1.0 without keep-alive: one response, then close;
    what follows on the connection is not read as a request."""
    before = e.origin.count()
    with h.Conn(e.port) as c:
        c.send(b"GET /10a HTTP/1.0\r\n\r\nGET /10b HTTP/1.0\r\n\r\n")
        r = c.read_response("GET")
        h.status(r, 200, "REQ-HTTP10-CLOSE")
        h.check("close" in ",".join(r.get_all("Connection")).lower(),
                "REQ-HTTP10-CLOSE: Connection %r" % r.get_all("Connection"))
        closes(c, "REQ-HTTP10-CLOSE")
    got = forwarded_since(e, before, 1, "REQ-HTTP10-CLOSE")
    h.eq(got[0].target, "/10a", "REQ-HTTP10-CLOSE: forwarded target")


def test_http10_keepalive(e):
    """REQ-HTTP10-KEEPALIVE: HTTP/1.0 with Connection: keep-alive keeps the
    connection, says so in the response, and serves the next request."""
    before = e.origin.count()
    with h.Conn(e.port) as c:
        for i in range(3):
            c.send(b"GET /ka%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % i)
            r = c.read_response("GET")
            h.status(r, 200, "REQ-HTTP10-KEEPALIVE #%d" % i)
            h.eq([v.lower() for v in r.get_all("Connection")], ["keep-alive"],
                 "REQ-HTTP10-KEEPALIVE #%d: Connection" % i)
            h.check(r.has("Content-Length"), "REQ-HTTP10-KEEPALIVE: response without a length")
        c.send(b"GET /ka-last HTTP/1.0\r\n\r\n")
        h.status(c.read_response("GET"), 200, "REQ-HTTP10-KEEPALIVE last")
        closes(c, "REQ-HTTP10-KEEPALIVE: HTTP/1.0 without keep-alive after keep-alive ones")
    got = forwarded_since(e, before, 4, "REQ-HTTP10-KEEPALIVE")
    for r in got:
        h.eq(r.get_all("Connection"), [], "REQ-HTTP10-KEEPALIVE: Connection forwarded")


TRAILING = [
    ("Connection: close + Content-Length",
     b"POST /ct HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"),
    ("Connection: close + chunked",
     b"POST /ct HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n0\r\n\r\n"),
    ("HTTP/1.0 + Content-Length",
     b"POST /ct HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello"),
]
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"


def test_bytes_after_close(e):
    """REQ-CLOSE-TRAILING: a request that ends the connection, followed by more
    bytes: only the first request is forwarded, the rest is discarded."""
    for name, raw in TRAILING:
        what = "REQ-CLOSE-TRAILING (%s)" % name
        before = e.origin.count()
        with h.Conn(e.port) as c:
            c.send(raw + SMUGGLED)
            r = c.read_response("POST")
            h.status(r, 200, what)
            closes(c, what)
        got = forwarded_since(e, before, 1, what)
        h.eq(got[0].body, b"hello", what + ": forwarded body")


ERRORS = [
    ("invalid Content-Length", b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400),
    ("CL.TE", b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked"
              b"\r\n\r\n0\r\n\r\nG", 400),
    ("TE.CL", b"POST /e HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4"
              b"\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n", 400),
    ("bad chunk", b"POST /e HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhelloXX0\r\n\r\n", 400),
    ("unsupported coding", b"POST /e HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked"
                           b"\r\n\r\n0\r\n\r\n", 501),
]


def test_bytes_after_error(e):
    """REQ-ERROR-TRAILING: after an error answer, the connection closes and
    nothing after the refused request is read as a request."""
    for name, raw, status in ERRORS:
        what = "REQ-ERROR-TRAILING (%s)" % name
        before = e.origin.count()
        with h.Conn(e.port) as c:
            c.send(raw + SMUGGLED)
            r = c.read_response("POST")
            h.status(r, status, what)
            closes(c, what)
        forwarded_since(e, before, 0, what)


def test_pipeline_reframed(e):
    """REQ-PIPELINE: pipelined requests, each with its own framing quirks, are
    answered in order and forwarded one by one, each canonical, with the
    bodies intact: no byte of one message leaks into the next."""
    raw = (b"POST /p1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"
           b"3;x=y\r\nabc\r\n0000A\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n"
           b"POST /p2 HTTP/1.1\r\nHost: a\r\nContent-Length: 0004\r\n\r\nwxyz"
           b"GET /p3 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
           b"\r\nGET /p4 HTTP/1.1\r\nHost: a\r\n\r\n")
    before = e.origin.count()
    with h.Conn(e.port) as c:
        c.send(raw)
        for m in ("POST", "POST", "GET", "GET"):
            h.status(c.read_response(m), 200, "REQ-PIPELINE")
    got = forwarded_since(e, before, 4, "REQ-PIPELINE")
    h.eq([r.target for r in got], ["/p1", "/p2", "/p3", "/p4"], "REQ-PIPELINE: order")
    h.eq([r.body for r in got], [b"abc0123456789", b"wxyz", b"", b""], "REQ-PIPELINE: bodies")
    h.eq([r.framing for r in got], ["chunked", "length", "length", "none"], "REQ-PIPELINE: framing")


def read_interim(c, what):
    r = c.read_response("POST", allow_interim=False)
    h.status(r, 100, what + ": interim")
    return r


def test_expect_continue(e):
    """REQ-EXPECT-100: weir answers 100 itself; Expect is not forwarded."""
    before = e.origin.count()
    with h.Conn(e.port) as c:
        c.send(b"POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        read_interim(c, "REQ-EXPECT-100")
        c.send(b"hello")
        r = c.read_response("POST")
        h.status(r, 200, "REQ-EXPECT-100 final")
        h.eq(r.interim, [], "REQ-EXPECT-100: a second interim response")
    got = forwarded_since(e, before, 1, "REQ-EXPECT-100")
    h.eq(got[0].get_all("Expect"), [], "REQ-EXPECT-100: Expect forwarded")
    h.eq(got[0].body, b"hello", "REQ-EXPECT-100: body")


def test_expect_body_sent_early(e):
    """REQ-EXPECT-EARLY: a client that sends its body without waiting: at most
    one 100, and the body arrives intact."""
    before = e.origin.count()
    with h.Conn(e.port) as c:
        c.send(b"POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
               b"hello")
        r = c.read_response("POST")
        h.status(r, 200, "REQ-EXPECT-EARLY")
        h.check(len(r.interim) <= 1 and all(s == 100 for s, _ in r.interim),
                "REQ-EXPECT-EARLY: interim responses %r" % r.interim)
        r = c.request("GET", "/after")
        h.status(r, 200, "REQ-EXPECT-EARLY: the next request on the connection")
    got = forwarded_since(e, before, 2, "REQ-EXPECT-EARLY")
    h.eq(got[0].body, b"hello", "REQ-EXPECT-EARLY: body")


def nothing_for(c, seconds, what):
    c.sock.settimeout(seconds)
    try:
        data = c.sock.recv(4096)
        h.fail("%s: got %r before sending the body" % (what, data))
    except socket.timeout:
        pass
    finally:
        c.sock.settimeout(h.SOCK_TIMEOUT)


def test_expect_http10(e):
    """REQ-EXPECT-HTTP10: the expectation is ignored in HTTP/1.0 (RFC 9110
    10.1.1): no 100, the body is read when it comes."""
    with h.Conn(e.port) as c:
        c.send(b"POST /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        nothing_for(c, 0.3, "REQ-EXPECT-HTTP10")
        c.send(b"hello")
        r = c.read_response("POST")
        h.status(r, 200, "REQ-EXPECT-HTTP10")
        h.eq(r.interim, [], "REQ-EXPECT-HTTP10: interim responses")


def test_expect_no_body(e):
    """REQ-EXPECT-NOBODY: no 100 for a request without a body."""
    with h.Conn(e.port) as c:
        r = c.request("GET", "/x", headers=[("Expect", "100-continue")])
        h.status(r, 200, "REQ-EXPECT-NOBODY")
        h.eq(r.interim, [], "REQ-EXPECT-NOBODY: interim responses")


def test_expect_rejected(e):
    """REQ-EXPECT-REJECT: a request weir refuses from its head gets the final
    status instead of 100, and the body it never asked for is not read as a
    request."""
    before = e.origin.count()
    with h.Conn(e.port) as c:
        c.send(b"POST /small/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
               b"Content-Length: 5000\r\n\r\n")
        r = c.read_response("POST", allow_interim=False)
        h.status(r, 413, "REQ-EXPECT-REJECT")
        c.send(SMUGGLED)
        closes(c, "REQ-EXPECT-REJECT")
    forwarded_since(e, before, 0, "REQ-EXPECT-REJECT")


def test_expect_upstream_100(e):
    """REQ-EXPECT-UPSTREAM-100: a 100 from the upstream is not forwarded: the
    client sees weir's one 100, then the final response."""
    e.origin.script["/up100"] = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
                                 b"Content-Length: 2\r\n\r\nok", False)
    with h.Conn(e.port) as c:
        c.send(b"POST /up100 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5"
               b"\r\n\r\n")
        read_interim(c, "REQ-EXPECT-UPSTREAM-100")
        c.send(b"hello")
        r = c.read_response("POST")
        h.status(r, 200, "REQ-EXPECT-UPSTREAM-100")
        h.eq(r.interim, [], "REQ-EXPECT-UPSTREAM-100: the upstream's 100 was forwarded")
        h.eq(r.body, b"ok", "REQ-EXPECT-UPSTREAM-100: body")


def test_early_response(e):
    """REQ-EARLY-RESPONSE: the upstream answers before the request body is
    complete: the answer is forwarded, then the client connection closes (the
    rest of its body is never read as requests) and the upstream connection
    is not reused."""
    e.origin.early["/early"] = (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                b"Connection: keep-alive\r\n\r\nearly")
    before = e.origin.count()
    with h.Conn(e.port) as c:
        c.send(b"POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        r = c.read_response("POST")
        h.status(r, 200, "REQ-EARLY-RESPONSE")
        h.eq(r.body, b"early", "REQ-EARLY-RESPONSE: body")
        h.check("close" in ",".join(r.get_all("Connection")).lower(),
                "REQ-EARLY-RESPONSE: Connection %r" % r.get_all("Connection"))
        try:
            c.send(SMUGGLED)
        except OSError:
            pass
        closes(c, "REQ-EARLY-RESPONSE")
    cids = [cid for target, cid in e.origin.heads if target == "/early"]
    h.eq(len(cids), 1, "REQ-EARLY-RESPONSE: heads of /early at the origin")
    cid = cids[0]
    h.check(e.origin.wait_closed(cid), "REQ-EARLY-RESPONSE: upstream connection %d kept" % cid)
    forwarded_since(e, before, 0, "REQ-EARLY-RESPONSE (the cut request never completes)")
    h.status(h.request(e.port, "GET", "/after"), 200, "REQ-EARLY-RESPONSE: next request")


if __name__ == "__main__":
    h.main([test_http10_close, test_http10_keepalive, test_bytes_after_close,
            test_bytes_after_error, test_pipeline_reframed, test_expect_continue,
            test_expect_body_sent_early, test_expect_http10, test_expect_no_body,
            test_expect_rejected, test_expect_upstream_100, test_early_response],
           setup=setup)
