#!/usr/bin/env python3
"""SLOW-LORIS (docs/HTTP1.md): 1,000 connections on one reactor send their
request heads one byte per second, with weir's default client_header_timeout
(10 s). Meanwhile normal clients are served, every half second; when the
timeout runs out each trickling connection gets 408 and is closed, and weir
serves on. RLIMIT_NOFILE is raised for this process and for weir."""

import os
import resource
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http1"))
import harness as h  # noqa: E402
import h1origin  # noqa: E402

N = 1000
HEAD = b"GET /loris HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * 40


def setup():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * N + 512
    if hard != resource.RLIM_INFINITY and hard < want:
        raise h.Skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    # weir inherits the raised limit; default timeouts
    return h1origin.setup(h)


def test_slowloris(e):
    conns = []
    for _ in range(N):
        s = socket.create_connection(("127.0.0.1", e.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        conns.append(s)
    t0 = time.monotonic()
    replies = [b""] * N
    closed = [False] * N
    served = 0
    k = 0
    worst = 0.0
    while time.monotonic() - t0 < 13:
        # one byte per second on every trickling connection
        if k < len(HEAD) and time.monotonic() - t0 >= k:
            for i, s in enumerate(conns):
                if not closed[i]:
                    try:
                        s.send(HEAD[k:k + 1])
                    except OSError:
                        closed[i] = True
            k += 1
        # a normal client, served while they trickle
        t1 = time.monotonic()
        r = h.request(e.port, "GET", "/normal", timeout=3)
        h.status(r, 200, "a normal request %.1f s into the trickle" % (t1 - t0))
        worst = max(worst, time.monotonic() - t1)
        served += 1
        # collect what weir says to the trickling connections
        for i, s in enumerate(conns):
            if closed[i]:
                continue
            try:
                b = s.recv(4096)
                if b:
                    replies[i] += b
                else:
                    closed[i] = True
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = True
        if all(closed):
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - t0
    for s in conns:
        s.close()
    n408 = sum(1 for r in replies if r.startswith(b"HTTP/1.1 408 "))
    nclosed = sum(closed)
    print("trickle: %d bytes each over %.1f s; %d normal requests served (slowest %.2f s); "
          "%d of %d trickling connections got 408, %d closed"
          % (k, elapsed, served, worst, n408, N, nclosed))
    h.check(served > 0, "no normal request was served in %.1f s" % elapsed)
    h.eq(n408, N, "trickling connections answered 408")
    h.eq(nclosed, N, "trickling connections closed")
    h.check(k >= 9, "the header timeout fired after %d trickled bytes (default 10 s)" % k)
    e.weir.check_alive("slowloris")
    h.status(h.request(e.port, "GET", "/after"), 200, "a request after the slowloris")


if __name__ == "__main__":
    h.main([test_slowloris], setup=setup)
