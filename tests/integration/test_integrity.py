#!/usr/bin/env python3
"""Byte integrity under concurrency: 200 uploads and 200 downloads of random
sizes (0..8 MiB), 32 concurrent clients, weir with 2 workers; every body is
checked by SHA-256 (uploads: the origin's X-Request-Sha256; downloads: the
origin's pattern and X-Body-Sha256).

Environment: WEIR_IT_SEED (default 20240601), WEIR_IT_N (jobs per kind,
default 200), WEIR_IT_DIRECT=1 (talk to the origin directly: checks the test
itself)."""

import concurrent.futures
import os
import random
import threading
import time

import sys
sys.dont_write_bytecode = True
import harness as h  # noqa: E402

SEED = int(os.environ.get("WEIR_IT_SEED", "20240601"))
N = int(os.environ.get("WEIR_IT_N", "200"))
MAXSIZE = 8 << 20
CONCURRENCY = 32


class Env:
    pass


def setup():
    e = Env()
    e.origin = h.start_origin(threads=2)
    if os.environ.get("WEIR_IT_DIRECT") == "1":
        e.weir = None
        e.port = e.origin.port
        return e
    cfg = h.simple_config(
        top={"workers": 2},
        upstreams={"app": {"servers": [e.origin.addr], "keepalive": 32,
                           "read_timeout": "30s", "connect_timeout": "2s"}},
        routes=["{path_prefix: /, upstream: app}"])
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    return e


def make_jobs():
    rng = random.Random(SEED)
    jobs = []
    for i in range(N):
        n = rng.randrange(0, MAXSIZE + 1)
        if rng.random() < 0.1:
            n = rng.choice([0, 1, 4095, 4096, 4097, 65536, MAXSIZE])
        jobs.append({"kind": "up", "i": i, "n": n, "off": rng.randrange(0, MAXSIZE - n + 1),
                     "chunked": rng.random() < 0.5, "echo": rng.random() < 0.1,
                     "chunk": rng.choice([1000, 4096, 65536, 100000, 1 << 20, None])})
    for i in range(N):
        n = rng.randrange(0, MAXSIZE + 1)
        if rng.random() < 0.1:
            n = rng.choice([0, 1, 4095, 4096, 4097, 65536, MAXSIZE])
        jobs.append({"kind": "down", "i": i, "n": n, "chunked": rng.random() < 0.3,
                     "chunk": rng.choice([777, 4096, 65536, 1 << 20]), "head": False})
        if n <= 100000 and rng.random() < 0.3:
            jobs[-1]["chunk"] = 1             # 1-byte chunks only for small bodies
    rng.shuffle(jobs)
    for j in jobs:
        j["reconnect"] = rng.random() < 0.1
    return jobs


_local = threading.local()
_pool = [b""]


def conn(e):
    c = getattr(_local, "conn", None)
    if c is None:
        c = h.Conn(e.port, timeout=30)
        _local.conn = c
    return c


def drop_conn():
    c = getattr(_local, "conn", None)
    if c is not None:
        c.close()
        _local.conn = None


def run_job(e, j):
    what = "%s #%d (%d bytes%s)" % ("upload" if j["kind"] == "up" else "download", j["i"], j["n"],
                                    ", chunked, chunk %s" % j["chunk"] if j["chunked"] else "")
    try:
        if j["kind"] == "up":
            _upload(e, j, what)
        else:
            _download(e, j, what)
    except Exception as ex:
        drop_conn()
        return "%s: %s: %s" % (what, type(ex).__name__, ex)
    if j["reconnect"]:
        drop_conn()
    return None


def _upload(e, j, what):
    body = memoryview(_pool[0])[j["off"]:j["off"] + j["n"]]
    want = h.sha256(body)
    target = "/up?i=%d%s" % (j["i"], "&echo=1" if j["echo"] else "")
    c = conn(e)
    if j["chunked"]:
        head = "POST %s HTTP/1.1\r\nHost: it\r\nTransfer-Encoding: chunked\r\n\r\n" % target
        c.send(head.encode())
        step = j["chunk"] or max(1, j["n"])
        for k in range(0, j["n"], step):
            piece = body[k:k + step]
            c.send(b"".join((b"%x\r\n" % len(piece), piece, b"\r\n")))
        c.send(b"0\r\n\r\n")
    else:
        head = "PUT %s HTTP/1.1\r\nHost: it\r\nContent-Length: %d\r\n\r\n" % (target, j["n"])
        c.send(head.encode())
        if j["n"]:
            c.send(body)
    r = c.read_response("POST")
    h.status(r, 200, what)
    h.eq(r.get("X-Request-Bytes"), str(j["n"]), what + ": origin X-Request-Bytes")
    h.eq(r.get("X-Request-Sha256"), want, what + ": origin X-Request-Sha256")
    if j["echo"]:
        h.eq(len(r.body), j["n"], what + ": echoed body length")
        h.eq(h.sha256(r.body), want, what + ": echoed body sha256")
    if r.close_delimited:
        drop_conn()


def _download(e, j, what):
    target = "/down?i=%d&size=%d&sha=1%s" % (j["i"], j["n"],
                                             "&chunked=1&chunk=%d" % j["chunk"] if j["chunked"] else "")
    c = conn(e)
    c.send(("GET %s HTTP/1.1\r\nHost: it\r\n\r\n" % target).encode())
    r = c.read_response("GET")
    h.status(r, 200, what)
    h.eq(len(r.body), j["n"], what + ": body length")
    h.body_sha(r, what)
    if r.body != h.pattern(j["n"]):
        h.pattern_check(r.body, j["n"], what)
    if r.close_delimited:
        drop_conn()


def test_integrity(e):
    print("   seed %d, %d uploads + %d downloads, concurrency %d" % (SEED, N, N, CONCURRENCY))
    _pool[0] = random.Random(SEED).randbytes(MAXSIZE)
    h.pattern(MAXSIZE)        # fill the cache before the threads race for it
    jobs = make_jobs()
    total = sum(j["n"] for j in jobs)
    before = e.origin.stats()
    t0 = time.monotonic()
    failures = []
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as ex:
        for res in ex.map(lambda j: run_job(e, j), jobs):
            if res:
                failures.append(res)
    dt = time.monotonic() - t0
    after = e.origin.stats()
    print("   %d jobs, %.0f MiB of bodies in %.1fs (%.0f MiB/s); origin connections +%d, requests +%d"
          % (len(jobs), total / 1048576.0, dt, total / 1048576.0 / dt,
             after["connections"] - before["connections"], after["requests"] - before["requests"]))
    if e.weir is not None:
        e.weir.check_alive("the integrity run")
    if failures:
        h.fail("%d of %d transfers failed; first ones:\n  %s" %
               (len(failures), len(jobs), "\n  ".join(failures[:15])))


def test_still_serving(e):
    r = h.request(e.port, "GET", "/end?size=100000&sha=1")
    h.status(r, 200, "GET after the integrity run")
    h.pattern_check(r.body, 100000, "GET after the integrity run")


if __name__ == "__main__":
    h.main([test_integrity, test_still_serving], setup=setup)
