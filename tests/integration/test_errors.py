#!/usr/bin/env python3
"""Error paths: 502/504 from upstream failures, a response cut mid-body,
400 + close on ambiguous framing, 414, 431, 413; weir stays up after each."""

import time

import sys
sys.dont_write_bytecode = True
import harness as h  # noqa: E402


class Env:
    pass


def setup():
    e = Env()
    e.origin = h.start_origin()
    e.dead_port = h.free_port()          # nothing listens there
    cfg = h.simple_config(
        top={"workers": 2},
        upstreams={
            "app": {"servers": [e.origin.addr], "read_timeout": "3s", "connect_timeout": "1s"},
            "slow": {"servers": [e.origin.addr], "read_timeout": "500ms", "connect_timeout": "1s"},
            "dead": {"servers": ["127.0.0.1:%d" % e.dead_port], "connect_timeout": "1s"},
        },
        routes=["{path_prefix: /dead/, upstream: dead}",
                "{path_prefix: /slow/, upstream: slow}",
                "{path_prefix: /small/, upstream: app, max_body: 1k}",
                "{path_prefix: /o/, upstream: app}"])
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    return e


def alive(e, what):
    e.weir.check_alive(what)
    try:
        r = h.request(e.port, "GET", "/o/alive?size=20&sha=1")
    except Exception as ex:
        h.fail("after %s: a normal GET failed: %s" % (what, ex))
    h.status(r, 200, "normal GET after " + what)
    h.pattern_check(r.body, 20, "normal GET after " + what)


def not_from_origin(r, what):
    h.check(r.get("X-Origin-Conn") is None,
            "%s: the error response came from the origin, not weir: %r" % (what, r.headers))


def test_502_connect_refused(e):
    for i in range(2):
        r = h.request(e.port, "GET", "/dead/x")
        h.status(r, 502, "GET /dead/x (nothing listens on 127.0.0.1:%d)" % e.dead_port)
    alive(e, "502 connect refused")


def test_502_reset(e):
    r = h.request(e.port, "GET", "/o/r?reset=1")
    h.status(r, 502, "GET /o/r?reset=1 (origin resets without answering)")
    not_from_origin(r, "reset=1")
    r = h.request(e.port, "POST", "/o/r?reset=1", body=b"x" * 10000)
    h.status(r, 502, "POST /o/r?reset=1 with a body")
    alive(e, "502 reset")


def test_504_read_timeout(e):
    t0 = time.monotonic()
    r = h.request(e.port, "GET", "/slow/d?delay=5000", timeout=10)
    h.status(r, 504, "GET /slow/d?delay=5000 with read_timeout 500ms (took %.1fs)"
             % (time.monotonic() - t0))
    r = h.request(e.port, "GET", "/slow/s?stall=1", timeout=10)
    h.status(r, 504, "GET /slow/s?stall=1 with read_timeout 500ms")
    alive(e, "504")


def _cut_mid_body(e, target, what):
    with h.Conn(e.port, timeout=10) as c:
        c.send(h.build_request("GET", target))
        head = c._read_head()
        r = h.parse_head(head)
        h.status(r, 200, what + ": the response head (origin sends it at once)")
        got = len(c.buf)
        c.buf.clear()
        deadline = time.monotonic() + 8
        c.sock.settimeout(1)
        while True:
            if time.monotonic() > deadline:
                h.fail("%s: client connection still open 8s after the head (%d body bytes so far); "
                       "expected weir to close it when the 500ms upstream read timeout fires"
                       % (what, got))
            try:
                data = c.sock.recv(65536)
            except ConnectionResetError:
                break
            except OSError:        # socket.timeout: keep waiting until the deadline
                continue
            if not data:
                break
            got += len(data)
        h.check(got < 10000000, "%s: closed, but only after the full body" % what)
        h.check(got <= 1 << 20, "%s: %d body bytes before the close (drip sends 4 KiB per second)"
                % (what, got))


def test_response_started_then_upstream_times_out(e):
    # the origin sends the head at once, then 4 KiB per second: the 500ms read
    # timeout fires mid-body, weir can only close the client connection
    _cut_mid_body(e, "/slow/cut?size=10000000&drip=1000", "size=10000000&drip=1000 (Content-Length)")
    _cut_mid_body(e, "/slow/cut?size=10000000&drip=1000&chunked=1", "size=10000000&drip=1000&chunked=1")
    alive(e, "response cut mid-body")


HOST = b"Host: x\r\n"

# (name, raw request, allowed statuses)
AMBIGUOUS = [
    ("CL + TE", b"POST /o/a HTTP/1.1\r\n" + HOST +
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", (400,)),
    ("TE + CL", b"POST /o/a HTTP/1.1\r\n" + HOST +
     b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", (400,)),
    ("two different CLs", b"POST /o/a HTTP/1.1\r\n" + HOST +
     b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", (400,)),
    ("CL list 5, 6", b"POST /o/a HTTP/1.1\r\n" + HOST + b"Content-Length: 5, 6\r\n\r\nhello!", (400,)),
    ("CL -5", b"POST /o/a HTTP/1.1\r\n" + HOST + b"Content-Length: -5\r\n\r\nhello", (400,)),
    ("CL abc", b"POST /o/a HTTP/1.1\r\n" + HOST + b"Content-Length: abc\r\n\r\nhello", (400,)),
    ("CL +5", b"POST /o/a HTTP/1.1\r\n" + HOST + b"Content-Length: +5\r\n\r\nhello", (400,)),
    ("TE gzip", b"POST /o/a HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\nhello", (400,)),
    ("TE chunked, gzip", b"POST /o/a HTTP/1.1\r\n" + HOST +
     b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", (400,)),
    ("TE chunked twice", b"POST /o/a HTTP/1.1\r\n" + HOST +
     b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", (400,)),
    # RFC 9112 6.1 / include/weir/h1.h: an unknown coding before chunked is 501
    ("TE gzip, chunked", b"POST /o/a HTTP/1.1\r\n" + HOST +
     b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", (400, 501)),
    ("TE in HTTP/1.0", b"POST /o/a HTTP/1.0\r\n" + HOST +
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", (400,)),
    ("chunk size zz", b"POST /o/a HTTP/1.1\r\n" + HOST +
     b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", (400,)),
    ("chunk size overflow", b"POST /o/a HTTP/1.1\r\n" + HOST +
     b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n", (400,)),
    ("chunk size -1", b"POST /o/a HTTP/1.1\r\n" + HOST +
     b"Transfer-Encoding: chunked\r\n\r\n-1\r\nhello\r\n0\r\n\r\n", (400,)),
    ("chunk data without CRLF", b"POST /o/a HTTP/1.1\r\n" + HOST +
     b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", (400,)),
    ("chunk size after valid chunk", b"POST /o/a HTTP/1.1\r\n" + HOST +
     b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n", (400,)),
]


def test_ambiguous_framing(e):
    for name, raw, allowed in AMBIGUOUS:
        what = "%s: request %r" % (name, raw)
        with h.Conn(e.port) as c:
            c.send(raw)
            try:
                r = c.read_response("POST")
            except h.ConnClosed as ex:
                h.fail("%s: connection closed without a response (%s)" % (what, ex))
            h.status(r, allowed, what)
            not_from_origin(r, what)
            c.expect_closed(what=what + " -> %d" % r.status)
        e.weir.check_alive(name)
    alive(e, "ambiguous framing requests")


def test_missing_host(e):
    with h.Conn(e.port) as c:
        c.send(b"GET /o/nohost HTTP/1.1\r\n\r\n")
        r = c.read_response("GET")
        h.status(r, 400, "HTTP/1.1 request without Host")
        not_from_origin(r, "request without Host")


def test_414(e):
    target = "/o/" + "a" * 9216
    r = h.request(e.port, "GET", target)
    h.status(r, 414, "GET with a 9 KiB target")
    not_from_origin(r, "414")
    # just under the limit is fine (request line < 8 KiB)
    target = "/o/ok?" + "b" * 8000
    r = h.request(e.port, "GET", target)
    h.status(r, 200, "GET with a %d-byte target (request line under 8 KiB)" % len(target))
    alive(e, "414")


def test_431(e):
    r = h.request(e.port, "GET", "/o/big", headers=[("X-Big", "v" * (17 * 1024))])
    h.status(r, 431, "GET with a 17 KiB header field")
    not_from_origin(r, "431 (17 KiB field)")
    r = h.request(e.port, "GET", "/o/many", headers=[("X-F-%d" % i, "v") for i in range(101)])
    h.status(r, 431, "GET with Host + 101 fields")
    not_from_origin(r, "431 (101 fields)")
    # within the limits
    r = h.request(e.port, "GET", "/o/ok", headers=[("X-Big", "v" * (14 * 1024))])
    h.status(r, 200, "GET with a 14 KiB header field")
    r = h.request(e.port, "GET", "/o/ok", headers=[("X-F-%d" % i, "v") for i in range(90)])
    h.status(r, 200, "GET with Host + 90 fields")
    alive(e, "431")


def test_413(e):
    # Content-Length over max_body: answered from the head, before the body
    with h.Conn(e.port) as c:
        c.send(b"POST /small/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n")
        r = c.read_response("POST")
        h.status(r, 413, "POST Content-Length 2000 to a max_body 1k route")
        not_from_origin(r, "413 (CL)")
    # chunked body crossing max_body
    body = b"z" * 2000
    with h.Conn(e.port) as c:
        c.send(h.build_request("POST", "/small/x", body=body, chunked=True, chunk_sizes=500))
        try:
            r = c.read_response("POST")
        except h.ConnClosed as ex:
            h.fail("chunked 2000 bytes to a max_body 1k route: closed without a response (%s)" % ex)
        h.status(r, 413, "POST chunked 2000 bytes to a max_body 1k route")
        not_from_origin(r, "413 (chunked)")
    # exactly at the limit: fine, both framings
    body = h.rand_bytes(1024, seed=9)
    r = h.request(e.port, "POST", "/small/x", body=body)
    h.status(r, 200, "POST Content-Length 1024 to a max_body 1k route")
    h.eq(r.get("X-Request-Sha256"), h.sha256(body), "1024-byte upload sha256")
    r = h.request(e.port, "POST", "/small/x", body=body, chunked=True, chunk_sizes=100)
    h.status(r, 200, "POST chunked 1024 bytes to a max_body 1k route")
    h.eq(r.get("X-Request-Sha256"), h.sha256(body), "1024-byte chunked upload sha256")
    alive(e, "413")


if __name__ == "__main__":
    h.main([test_502_connect_refused, test_502_reset, test_504_read_timeout,
            test_response_started_then_upstream_times_out, test_ambiguous_framing, test_missing_host,
            test_414, test_431, test_413],
           setup=setup)
