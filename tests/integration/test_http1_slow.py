#!/usr/bin/env python3
"""Slow clients (docs/HTTP1.md, SLOW-*): the client header timeout is absolute
(trickling bytes does not extend it), the body timeout is idle (a slow but
steady body completes), an idle keep-alive connection is closed quietly,
and connections beyond max_connections get a short 503 and a close. Short
timeouts keep this quick; test_http1_slowloris.py holds 1,000 trickling
connections at the default 10 s."""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http1"))
import harness as h  # noqa: E402
import h1origin  # noqa: E402


def setup():
    return h1origin.setup(h, top={"client_header_timeout": "1s", "client_body_timeout": "1s",
                                  "keepalive_timeout": "1s"})


def read_until_close(s, limit):
    """Everything the peer sends until it closes; fails after `limit` s."""
    s.settimeout(0.2)
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, True
        if not b:
            return data, True
        data += b
    return data, False


def test_header_timeout_absolute(e):
    """SLOW-HEADER: a head trickled one byte per 100 ms (each byte well within
    any idle timeout) is cut off 1 s after it started, with 408 and close."""
    s = socket.create_connection(("127.0.0.1", e.port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = b"GET /trickle HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * 200
    t0 = time.monotonic()
    got = b""
    s.settimeout(0.1)
    for k in range(len(head)):
        try:
            s.send(head[k:k + 1])
        except OSError:
            break
        try:
            got += s.recv(4096)
        except socket.timeout:
            pass
        except OSError:
            break
        if got:
            break
        if time.monotonic() - t0 > 6:
            break
    rest, closed = read_until_close(s, 3)
    got += rest
    elapsed = time.monotonic() - t0
    s.close()
    h.check(got.startswith(b"HTTP/1.1 408 "), "SLOW-HEADER: expected a 408, got %r" % got[:200])
    h.check(b"Connection: close" in got, "SLOW-HEADER: 408 without Connection: close")
    h.check(closed, "SLOW-HEADER: connection not closed after the 408")
    h.check(elapsed < 5, "SLOW-HEADER: the trickle extended the header timeout (%.1fs)" % elapsed)


def test_silent_connection(e):
    """SLOW-HEADER: a new connection that never sends a byte gets 408 and a
    close when the header timeout (counted from accept) runs out."""
    s = socket.create_connection(("127.0.0.1", e.port))
    data, closed = read_until_close(s, 5)
    s.close()
    h.check(closed, "SLOW-HEADER: a silent connection was kept")
    h.check(data.startswith(b"HTTP/1.1 408 "), "SLOW-HEADER: silent connection got %r" % data[:200])


def test_body_timeout_idle(e):
    """SLOW-BODY: a body that stops for longer than client_body_timeout gets
    408 and close; one that keeps coming, slower than the timeout in total
    but never idle that long, completes."""
    before = e.origin.count()
    s = socket.create_connection(("127.0.0.1", e.port))
    s.sendall(b"POST /stall HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello")
    data, closed = read_until_close(s, 5)
    s.close()
    h.check(data.startswith(b"HTTP/1.1 408 "), "SLOW-BODY: stalled body got %r" % data[:200])
    h.check(closed, "SLOW-BODY: connection kept after the 408")
    h.eq(e.origin.count(), before, "SLOW-BODY: the cut request reached the origin complete")

    with h.Conn(e.port) as c:
        c.send(b"POST /steady HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\n")
        for b in b"steady":
            time.sleep(0.3)
            c.send(bytes([b]))
        r = c.read_response("POST")
        h.status(r, 200, "SLOW-BODY: steady body (1.8 s in all, 0.3 s idle at most)")
    reqs = e.origin.wait_requests(before + 1)
    h.eq(reqs[-1].body, b"steady", "SLOW-BODY: steady body at the origin")


def test_keepalive_timeout(e):
    """SLOW-KEEPALIVE: an idle connection between requests is closed after
    keepalive_timeout, without a response."""
    with h.Conn(e.port) as c:
        h.status(c.request("GET", "/ka"), 200, "SLOW-KEEPALIVE first request")
        t0 = time.monotonic()
        data, closed = read_until_close(c.sock, 5)
    h.check(closed, "SLOW-KEEPALIVE: idle connection kept for 5 s with keepalive_timeout 1s")
    h.eq(data, b"", "SLOW-KEEPALIVE: bytes sent on an idle connection")
    h.check(time.monotonic() - t0 >= 0.5, "SLOW-KEEPALIVE: closed too early")


def test_max_connections(e):
    """SLOW-MAXCONN: beyond max_connections a new connection gets a short 503
    with Connection: close and is closed; once connections go away, new ones
    are served again."""
    cfg = h.simple_config(top={"workers": 1, "max_connections": 20,
                               "client_header_timeout": "30s"},
                          upstreams={"app": {"servers": [e.origin.addr]}},
                          routes=["{upstream: app}"])
    w = h.start_weir(cfg)
    # wait_accepting used one connection already; it is gone by now
    time.sleep(0.2)
    held = []
    for _ in range(20):
        held.append(socket.create_connection(("127.0.0.1", w.port)))
    time.sleep(0.2)
    for k in range(3):
        s = socket.create_connection(("127.0.0.1", w.port))
        s.sendall(b"GET /over HTTP/1.1\r\nHost: a\r\n\r\n")
        data, closed = read_until_close(s, 5)
        s.close()
        h.check(data.startswith(b"HTTP/1.1 503 "), "SLOW-MAXCONN #%d: got %r" % (k, data[:200]))
        h.check(b"Connection: close" in data, "SLOW-MAXCONN: 503 without Connection: close")
        h.check(data.endswith(b"too many connections\n"), "SLOW-MAXCONN: 503 body %r" % data)
        h.check(closed, "SLOW-MAXCONN: refused connection not closed")
    # the held connections still work
    held[0].sendall(b"GET /held HTTP/1.1\r\nHost: a\r\n\r\n")
    data, _ = read_until_close(held[0], 0.5)
    h.check(data.startswith(b"HTTP/1.1 200 "), "SLOW-MAXCONN: a held connection got %r" % data[:100])
    for s in held[:5]:
        s.close()
    time.sleep(0.3)
    r = h.request(w.port, "GET", "/again")
    h.status(r, 200, "SLOW-MAXCONN: a new connection once some closed")
    for s in held[5:]:
        s.close()
    w.check_alive("max_connections")


if __name__ == "__main__":
    h.main([test_header_timeout_absolute, test_silent_connection, test_body_timeout_idle,
            test_keepalive_timeout, test_max_connections], setup=setup)
