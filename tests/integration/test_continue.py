#!/usr/bin/env python3
"""Expect: 100-continue: weir answers 100 itself (Expect is not forwarded),
and answers 413 instead of 100 when the announced body is over max_body."""

import sys
sys.dont_write_bytecode = True
import harness as h  # noqa: E402


class Env:
    pass


def setup():
    e = Env()
    e.origin = h.start_origin()
    cfg = h.simple_config(
        top={"workers": 1},
        upstreams={"app": {"servers": [e.origin.addr], "read_timeout": "5s"}},
        routes=["{path_prefix: /small/, upstream: app, max_body: 1k}",
                "{path_prefix: /o/, upstream: app}"])
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    return e


def _expect_100(c, what):
    r = c.read_response("POST", allow_interim=False)
    h.status(r, 100, what + ": expected the interim 100 Continue before sending the body")
    h.eq(r.version, "HTTP/1.1", what + ": 100 Continue version")
    h.eq(r.body, b"", what + ": 100 Continue has no body")


def _check_final(r, body, what):
    h.status(r, 200, what + ": final response")
    h.eq(r.interim, [], what + ": further 1xx after the body (was Expect forwarded?)")
    h.eq(r.get("X-Request-Bytes"), str(len(body)), what + ": origin X-Request-Bytes")
    h.eq(r.get("X-Request-Sha256"), h.sha256(body), what + ": origin X-Request-Sha256")
    line, hdrs = h.parse_request_block(r.body)
    h.eq(h.hget_all(hdrs, "Expect"), [], what + ": Expect forwarded to the origin; block %r"
         % r.body.decode("latin-1"))


def test_continue_content_length(e):
    body = h.rand_bytes(200000, seed=3)
    with h.Conn(e.port) as c:
        c.send(h.build_request("POST", "/o/c?headers=1", [("Expect", "100-continue"),
                                                         ("Content-Length", str(len(body)))]))
        _expect_100(c, "Expect + Content-Length 200000")
        c.send(body)
        _check_final(c.read_response("POST"), body, "Expect + Content-Length 200000")
        # the connection is reusable
        r = c.request("GET", "/o/after?size=10&sha=1")
        h.status(r, 200, "GET after the 100-continue exchange")
        h.pattern_check(r.body, 10, "GET after the 100-continue exchange")


def test_continue_case_insensitive(e):
    body = b"0123456789"
    with h.Conn(e.port) as c:
        c.send(h.build_request("PUT", "/o/c?headers=1", [("expect", "100-Continue"),
                                                        ("Content-Length", "10")]))
        _expect_100(c, "expect: 100-Continue (case)")
        c.send(body)
        _check_final(c.read_response("PUT"), body, "expect: 100-Continue (case)")


def test_continue_chunked(e):
    body = h.rand_bytes(70001, seed=4)
    with h.Conn(e.port) as c:
        c.send(h.build_request("POST", "/o/c?headers=1", [("Expect", "100-continue"),
                                                         ("Transfer-Encoding", "chunked")]))
        _expect_100(c, "Expect + chunked")
        c.send(h.encode_chunked(body, [5000, 1, 30000]))
        _check_final(c.read_response("POST"), body, "Expect + chunked")


def test_continue_body_sent_early(e):
    # a client that does not wait for 100 (sends the body at once) still works
    body = h.rand_bytes(50000, seed=5)
    with h.Conn(e.port) as c:
        c.send(h.build_request("POST", "/o/c?headers=1", [("Expect", "100-continue")], body=body))
        r = c.read_response("POST")
        h.check(all(st == 100 for st, _ in r.interim) and len(r.interim) <= 1,
                "body sent early: interim responses %r" % r.interim)
        r.interim = []
        _check_final(r, body, "Expect, body sent without waiting")


def test_continue_small_route_ok(e):
    body = b"y" * 1000
    with h.Conn(e.port) as c:
        c.send(h.build_request("POST", "/small/ok?headers=1", [("Expect", "100-continue"),
                                                              ("Content-Length", "1000")]))
        _expect_100(c, "Expect, CL 1000 under max_body 1k")
        c.send(body)
        _check_final(c.read_response("POST"), body, "Expect, CL 1000 under max_body 1k")


def test_continue_413(e):
    with h.Conn(e.port) as c:
        c.send(h.build_request("POST", "/small/big", [("Expect", "100-continue"),
                                                     ("Content-Length", "5000")]))
        r = c.read_response("POST", allow_interim=False)
        h.status(r, 413, "Expect + Content-Length 5000 on a max_body 1k route (no 100 first)")
        h.check(r.get("X-Origin-Conn") is None, "413 came from the origin")
    # weir still serves
    r = h.request(e.port, "GET", "/o/alive?size=1")
    h.status(r, 200, "GET after the 413")
    e.weir.check_alive("100-continue tests")


if __name__ == "__main__":
    h.main([test_continue_content_length, test_continue_case_insensitive, test_continue_chunked,
            test_continue_body_sent_early, test_continue_small_route_ok, test_continue_413],
           setup=setup)
