#!/usr/bin/env python3
"""Trickling clients must not starve a reactor: 800 connections on one
reactor send their request heads one byte at a time (every byte its own TCP
segment, so every byte is its own receive completion), far more completions
than the reactor's 1024 receive buffers. Normal requests are still served at
once, and every trickled request is answered when its head completes.
(The slow-client suite of the hardening issue holds 1,000 connections at one
byte per second; this is the fast, always-on version of its buffer check.)"""

import socket
import time

import sys
sys.dont_write_bytecode = True
import harness as h  # noqa: E402

N = 800


class Env:
    pass


def setup():
    e = Env()
    e.origin = h.start_origin()
    cfg = h.simple_config(
        top={"workers": 1, "client_header_timeout": "30s"},
        upstreams={"app": {"servers": [e.origin.addr]}},
        routes=["{path_prefix: /, upstream: app}"])
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    return e


def test_trickle(e):
    conns = []
    for _ in range(N):
        s = socket.create_connection(("127.0.0.1", e.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append(s)
    head = b"GET /t?size=7 HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"p" * 32
    for k in range(len(head)):
        for s in conns:
            s.send(head[k:k + 1])
        time.sleep(0.004)
    # > 50 bytes x 800 connections = 40k single-byte receives so far
    t0 = time.monotonic()
    r = h.request(e.port, "GET", "/normal?size=11&sha=1")
    h.status(r, 200, "a normal GET while %d clients trickle" % N)
    h.pattern_check(r.body, 11, "normal GET while clients trickle")
    for s in conns:
        s.send(b"\r\n\r\n")
    answered = 0
    for s in conns:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                b = s.recv(4096)
                if not b:
                    break
                data += b
        except OSError:
            pass
        if data.startswith(b"HTTP/1.1 200"):
            answered += 1
        s.close()
    h.check(answered == N, "%d of %d trickled requests answered" % (answered, N))
    e.weir.check_alive("trickle")


if __name__ == "__main__":
    h.main([test_trickle], setup=setup)
