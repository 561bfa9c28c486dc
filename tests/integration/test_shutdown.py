#!/usr/bin/env python3
"""Graceful stop: SIGTERM/SIGINT stop accepting, in-flight requests finish
(up to shutdown_timeout), exit status 0."""

import errno
import signal
import socket
import threading
import time

import sys
sys.dont_write_bytecode = True
import harness as h  # noqa: E402


class Env:
    pass


def setup():
    e = Env()
    e.origin = h.start_origin(threads=2)
    return e


def _weir(e, shutdown_timeout):
    cfg = h.simple_config(
        top={"workers": 2, "shutdown_timeout": shutdown_timeout},
        upstreams={"app": {"servers": [e.origin.addr], "read_timeout": "20s"}},
        routes=["{path_prefix: /o/, upstream: app}"])
    return h.start_weir(cfg)


def _new_connection_after_stop(port):
    """None if refused/not served, else a description of what was served."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except ConnectionRefusedError:
        return None
    except OSError as ex:
        if ex.errno in (errno.ECONNREFUSED, errno.ECONNRESET):
            return None
        raise
    # connected (backlog of a listener not yet closed): it must not be served
    try:
        s.settimeout(2)
        s.sendall(h.build_request("GET", "/o/new?size=1"))
        data = s.recv(65536)
        if data.startswith(b"HTTP/1.1 2"):
            return "a connection opened after SIGTERM was served: %r" % data[:200]
        return None
    except OSError:
        return None
    finally:
        s.close()


def test_sigterm_inflight_complete(e):
    w = _weir(e, "5s")
    n = 10
    results = [None] * n
    sent = threading.Barrier(n + 1)

    def client(i):
        try:
            with h.Conn(w.port, timeout=10) as c:
                c.send(h.build_request("GET", "/o/slow?i=%d&delay=1500&size=%d&sha=1" % (i, 1000 + i)))
                sent.wait(5)
                results[i] = c.read_response("GET")
        except Exception as ex:
            results[i] = ex
            try:
                sent.abort()
            except Exception:
                pass

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    sent.wait(5)
    time.sleep(0.3)
    t_term = time.monotonic()
    w.proc.signal(signal.SIGTERM)
    time.sleep(0.2)
    served = _new_connection_after_stop(w.port)
    for t in threads:
        t.join(15)
    for i, r in enumerate(results):
        what = "in-flight request %d (delay=1500, SIGTERM after 300ms)" % i
        if isinstance(r, Exception) or r is None:
            h.fail("%s: %s: %s" % (what, type(r).__name__, r))
        h.status(r, 200, what)
        h.pattern_check(r.body, 1000 + i, what)
        h.body_sha(r, what)
    rc = w.proc.wait(max(0.1, t_term + 5 + 2 - time.monotonic()))
    h.check(rc is not None, "weir still running %.1fs after SIGTERM (shutdown_timeout 5s)"
            % (time.monotonic() - t_term))
    h.eq(rc, 0, "weir exit status after SIGTERM")
    h.check(served is None, served or "")
    try:
        socket.create_connection(("127.0.0.1", w.port), timeout=1).close()
        h.fail("a connection to the listen port succeeded after weir exited")
    except OSError:
        pass


def test_sigint_idle_keepalive(e):
    w = _weir(e, "5s")
    with h.Conn(w.port, timeout=10) as c:
        r = c.request("GET", "/o/idle?size=3")
        h.status(r, 200, "GET before SIGINT")
        t0 = time.monotonic()
        w.proc.signal(signal.SIGINT)
        rc = w.proc.wait(7)
        h.check(rc is not None, "weir still running 7s after SIGINT with one idle keep-alive "
                "connection (shutdown_timeout 5s)")
        h.eq(rc, 0, "weir exit status after SIGINT")
        c.expect_closed(timeout=2, what="idle keep-alive connection after weir exited")
        print("   (exit %.2fs after SIGINT with an idle keep-alive connection)" % (time.monotonic() - t0))


def test_shutdown_timeout_bounds_exit(e):
    w = _weir(e, "1s")
    with h.Conn(w.port, timeout=10) as c:
        c.send(h.build_request("GET", "/o/long?delay=8000&size=10"))
        time.sleep(0.3)
        t0 = time.monotonic()
        w.proc.signal(signal.SIGTERM)
        rc = w.proc.wait(4)
        h.check(rc is not None, "weir still running 4s after SIGTERM with a request waiting 8s "
                "upstream (shutdown_timeout 1s)")
        print("   (exit status %s, %.2fs after SIGTERM)" % (rc, time.monotonic() - t0))
        try:
            r = c.read_response("GET")
            h.check(r.status != 200, "request cut by shutdown_timeout got a 200 response: %r" % r)
        except h.ConnClosed:
            pass


if __name__ == "__main__":
    h.main([test_sigterm_inflight_complete, test_sigint_idle_keepalive,
            test_shutdown_timeout_bounds_exit], setup=setup)
