#!/usr/bin/env python3
"""Retry: an idempotent request whose upstream connection fails before any
response byte goes once more, to the next server; a non-idempotent one gets
502. One reactor and servers [dead, origin] in round robin: each request's
first try goes to the dead server (each retry moves the rotation on too)."""

import sys
sys.dont_write_bytecode = True
import harness as h  # noqa: E402


class Env:
    pass


def setup():
    e = Env()
    e.origin = h.start_origin()
    e.dead = h.free_port()
    cfg = h.simple_config(
        top={"workers": 1},
        upstreams={"app": {"servers": ["127.0.0.1:%d" % e.dead, e.origin.addr],
                           "connect_timeout": "1s"}},
        routes=["{path_prefix: /, upstream: app}"])
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    return e


def test_idempotent_retried(e):
    for method in ("GET", "HEAD", "DELETE", "OPTIONS", "GET"):
        r = h.request(e.port, method, "/r?size=9")
        h.status(r, 200, "%s with the first server dead (retried on the second)" % method)
        h.check(r.get("X-Origin-Conn") is not None, "%s: answer not from the origin" % method)


def test_post_not_retried(e):
    r = h.request(e.port, "POST", "/p?size=9", body=b"x" * 100)
    h.status(r, 502, "POST with the first server dead (not idempotent: no retry)")
    r = h.request(e.port, "GET", "/after?size=3")
    h.status(r, 200, "GET after the 502")


if __name__ == "__main__":
    h.main([test_idempotent_retried, test_post_not_retried], setup=setup)
