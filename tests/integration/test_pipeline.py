#!/usr/bin/env python3
"""Pipelining (answered in order) and upstream keep-alive reuse."""

import random
import threading

import sys
sys.dont_write_bytecode = True
import harness as h  # noqa: E402


class Env:
    pass


def setup():
    e = Env()
    e.origin = h.start_origin()
    cfg = h.simple_config(
        top={"workers": 2},
        upstreams={"app": {"servers": [e.origin.addr], "keepalive": 32, "read_timeout": "5s"}},
        routes=['{path: /ret, return: {status: 200, headers: {X-Ret: yes}, body: "ret"}}',
                "{path_prefix: /o/, upstream: app}"])
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    return e


def _send_async(c, data):
    err = []

    def run():
        try:
            c.send(data)
        except Exception as ex:  # reported by the reader side
            err.append(ex)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, err


def test_pipelined_gets(e):
    rng = random.Random(42)
    reqs = []          # (method, target, check)
    for i in range(100):
        if i == 30:
            reqs.append(("GET", "/ret", ("ret",)))
        elif i == 60:
            reqs.append(("GET", "/nothing/%d" % i, ("404",)))
        elif i == 50:
            reqs.append(("HEAD", "/o/p?id=%d&size=777" % i, ("head", 777)))
        elif i % 7 == 0:
            reqs.append(("GET", "/o/p?id=%d&headers=1" % i, ("id", i)))
        else:
            n = rng.choice([0, 1, 100, 4096, 65536, 200000]) + i
            reqs.append(("GET", "/o/p?id=%d&size=%d&sha=1%s" % (i, n, "&chunked=1" if i % 3 == 0 else ""),
                         ("size", n)))
    data = b"".join(h.build_request(m, t) for m, t, _ in reqs)
    with h.Conn(e.port) as c:
        c.send(data)                                   # one write
        for i, (m, t, chk) in enumerate(reqs):
            what = "pipelined response %d (%s %s)" % (i, m, t)
            try:
                r = c.read_response(m)
            except h.ConnClosed as ex:
                h.fail("%s: %s" % (what, ex))
            kind = chk[0]
            if kind == "ret":
                h.status(r, 200, what)
                h.eq((r.get("X-Ret"), r.body), ("yes", b"ret"), what + ": return route answer")
                continue
            if kind == "404":
                h.status(r, 404, what)
                continue
            h.status(r, 200, what)
            if kind == "head":
                h.eq(r.get("Content-Length"), "777", what + ": Content-Length")
                h.eq(r.get("X-Request-Method"), "HEAD", what + ": origin method")
            elif kind == "id":
                line, _ = h.parse_request_block(r.body)
                h.check(line.startswith("GET /o/p?id=%d&headers=1 " % i),
                        "%s: out of order, origin saw request line %r" % (what, line))
            else:
                h.pattern_check(r.body, chk[1], what)
                h.body_sha(r, what)
        # the connection is still usable after the batch
        r = c.request("GET", "/o/after?size=9&sha=1")
        h.status(r, 200, "GET after the pipelined batch")
        h.pattern_check(r.body, 9, "GET after the pipelined batch")


def test_pipelined_bodies(e):
    # POSTs with bodies (CL and chunked) interleaved with GETs, all in one stream
    rng = random.Random(7)
    reqs = []
    for i in range(40):
        if i % 2 == 0:
            body = h.rand_bytes(rng.randrange(0, 100000), seed=i)
            chunked = i % 4 == 0
            reqs.append(("POST", h.build_request("POST", "/o/b?id=%d" % i, body=body, chunked=chunked,
                                                 chunk_sizes=[1000, 7, 33333]), ("post", body)))
        else:
            n = rng.randrange(0, 100000)
            reqs.append(("GET", h.build_request("GET", "/o/b?id=%d&size=%d" % (i, n)), ("get", n)))
    with h.Conn(e.port) as c:
        t, err = _send_async(c, b"".join(x[1] for x in reqs))
        for i, (m, _, chk) in enumerate(reqs):
            what = "pipelined %s %d" % (m, i)
            r = c.read_response(m)
            h.status(r, 200, what)
            if chk[0] == "post":
                h.eq(r.get("X-Request-Bytes"), str(len(chk[1])), what + ": X-Request-Bytes")
                h.eq(r.get("X-Request-Sha256"), h.sha256(chk[1]), what + ": X-Request-Sha256")
            else:
                h.pattern_check(r.body, chk[1], what)
        t.join(5)
        h.check(not err, "sending the pipelined stream failed: %r" % err)


def test_keepalive_reuse(e):
    before = e.origin.stats()
    conns = [h.Conn(e.port) for _ in range(4)]
    origin_conns = set()
    try:
        for i in range(200):
            c = conns[i % 4]
            r = c.request("GET", "/o/ka?i=%d&size=%d" % (i, i * 10))
            h.status(r, 200, "keep-alive request %d" % i)
            h.pattern_check(r.body, i * 10, "keep-alive request %d" % i)
            origin_conns.add(r.get("X-Origin-Conn"))
    finally:
        for c in conns:
            c.close()
    after = e.origin.stats()
    new_conns = after["connections"] - before["connections"] - 1   # minus the /_stats connection
    new_reqs = after["requests"] - before["requests"]
    h.check(new_reqs >= 200, "origin saw %d new requests, expected >= 200 (stats %r -> %r)"
            % (new_reqs, before, after))
    h.check(new_conns <= 8, "200 sequential requests over 4 client connections opened %d upstream "
            "connections (expected <= 8: keep-alive pool not reused); stats %r -> %r"
            % (new_conns, before, after))
    h.check(len(origin_conns) <= 8, "responses came over %d distinct origin connections: %r"
            % (len(origin_conns), sorted(origin_conns)))


def test_still_alive(e):
    e.weir.check_alive("pipelining tests")


if __name__ == "__main__":
    h.main([test_pipelined_gets, test_pipelined_bodies, test_keepalive_reuse, test_still_alive],
           setup=setup)
