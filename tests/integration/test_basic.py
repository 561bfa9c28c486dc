#!/usr/bin/env python3
"""Basic proxying: methods, request/response framing, return routes, 404,
forwarded headers, Via, `weir -t` and `weir -v`."""

import os
import re

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
        upstreams={"app": {"servers": [e.origin.addr], "keepalive": 32,
                           "connect_timeout": "1s", "read_timeout": "5s"}},
        routes=[
            '{path: /ret, return: {status: 201, headers: {X-A: b}, body: "hi"}}',
            "{path_prefix: /o/, upstream: app}",
        ])
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    return e


def test_get(e):
    r = h.request(e.port, "GET", "/o/get?size=1000&sha=1")
    h.status(r, 200, "GET /o/get?size=1000&sha=1")
    h.eq(len(r.body), 1000, "GET body length")
    h.body_sha(r, "GET")
    h.pattern_check(r.body, 1000, "GET body")
    h.check(r.get("X-Origin-Conn") is not None, "GET: no X-Origin-Conn header (not from origin?)")
    h.eq(r.get("X-Request-Method"), "GET", "X-Request-Method")
    # byte-identical to what the origin sends directly
    d = h.request(e.origin.port, "GET", "/o/get?size=1000&sha=1")
    h.eq(h.sha256(r.body), h.sha256(d.body), "GET body via weir vs direct from origin (sha256)")


def test_get_keepalive_sequence(e):
    with h.Conn(e.port) as c:
        for i, n in enumerate((0, 1, 17, 4096, 65537, 300000)):
            r = c.request("GET", "/o/ka?size=%d&sha=1" % n)
            h.status(r, 200, "keep-alive request %d (size %d)" % (i, n))
            h.eq(len(r.body), n, "keep-alive request %d body length" % i)
            h.body_sha(r, "keep-alive request %d" % i)
            h.pattern_check(r.body, n, "keep-alive request %d" % i)


def test_head(e):
    with h.Conn(e.port) as c:
        r = c.request("HEAD", "/o/head?size=1000")
        h.status(r, 200, "HEAD /o/head?size=1000")
        h.eq(r.get_all("Content-Length"), ["1000"], "HEAD response Content-Length")
        h.check(not r.has("Transfer-Encoding"), "HEAD response has Transfer-Encoding: %r" % r.headers)
        h.eq(r.get("X-Request-Method"), "HEAD", "origin saw method")
        # no body bytes may follow: the next response on the connection must parse
        r2 = c.request("GET", "/o/after-head?size=5&sha=1")
        h.status(r2, 200, "GET after HEAD on the same connection")
        h.eq(len(r2.body), 5, "GET after HEAD body length")
        h.body_sha(r2, "GET after HEAD")


def _check_upload(r, body, what, chunked=None):
    h.status(r, 200, what)
    h.eq(r.get("X-Request-Bytes"), str(len(body)), what + ": origin X-Request-Bytes")
    h.eq((r.get("X-Request-Sha256") or "").lower(), h.sha256(body), what + ": origin X-Request-Sha256")
    if chunked is not None:
        h.eq(r.get("X-Request-Chunked"), "1" if chunked else "0", what + ": X-Request-Chunked")


def test_post_put_content_length(e):
    for method, n in (("POST", 0), ("POST", 1), ("POST", 100000), ("PUT", 1 << 20)):
        body = h.rand_bytes(n, seed=n)
        r = h.request(e.port, method, "/o/upload", body=body)
        _check_upload(r, body, "%s Content-Length %d" % (method, n), chunked=False)
        h.eq(r.get("X-Request-Method"), method, "%s: X-Request-Method" % method)


def test_post_put_chunked(e):
    with h.Conn(e.port) as c:
        for method, n, cs in (("POST", 0, None), ("POST", 10, 3), ("PUT", 70000, [1, 1000, 4096, 65535]),
                              ("POST", 1 << 20, 100000)):
            body = h.rand_bytes(n, seed=n + 7)
            r = c.request(method, "/o/upload-chunked", body=body, chunked=True, chunk_sizes=cs)
            _check_upload(r, body, "%s chunked %d bytes" % (method, n))
            h.eq(r.get("X-Request-Method"), method, "%s chunked: X-Request-Method" % method)
    # chunk extensions and trailers are legal and must not corrupt the body
    body = b"hello, world"
    raw = (b"POST /o/ext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;name=value\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n")
    with h.Conn(e.port) as c:
        c.send(raw)
        r = c.read_response("POST")
        _check_upload(r, body, "chunked with extension and trailer")


def test_response_framings(e):
    n = 123457
    for q in ("size=%d" % n, "size=%d&chunked=1" % n, "size=%d&chunked=1&chunk=1000" % n,
              "size=%d&close=1" % n, "size=0&chunked=1", "size=0&close=1"):
        target = "/o/framing?" + q
        d = h.request(e.origin.port, "GET", target)
        h.status(d, 200, "direct from origin " + target)
        with h.Conn(e.port) as c:
            r = c.request("GET", target)
            h.status(r, 200, "via weir " + target)
            h.eq(len(r.body), len(d.body), "body length via weir vs direct, " + target)
            h.eq(h.sha256(r.body), h.sha256(d.body), "body sha256 via weir vs direct, " + target)
            h.pattern_check(r.body, len(d.body), "via weir " + target)
            cl = r.get_all("Content-Length")
            te = r.get_all("Transfer-Encoding")
            h.check(not (cl and te), "%s: response has both Content-Length and Transfer-Encoding: %r"
                    % (target, r.headers))
            h.check(len(cl) <= 1, "%s: several Content-Length fields: %r" % (target, cl))
            # the connection stays usable unless weir framed by close
            if not r.close_delimited:
                r2 = c.request("GET", "/o/next?size=3&sha=1")
                h.status(r2, 200, "request after %s on the same connection" % target)
                h.body_sha(r2, "request after " + target)


def test_chunked_many_small_chunks(e):
    # responses and requests made of thousands of small chunks
    for q, n in (("size=3000000&chunked=1&chunk=64", 3000000), ("size=200000&chunked=1&chunk=1", 200000),
                 ("size=3000000&chunked=1&chunk=1000", 3000000)):
        target = "/o/small-chunks?" + q
        with h.Conn(e.port) as c:
            r = c.request("GET", target)
            h.status(r, 200, "via weir " + target)
            h.pattern_check(r.body, n, "via weir " + target)
    body = h.rand_bytes(1000000, seed=16)
    r = h.request(e.port, "POST", "/o/small-chunks-up", body=body, chunked=True, chunk_sizes=16)
    _check_upload(r, body, "POST 1 MB in 16-byte chunks")


def test_no_body_statuses(e):
    with h.Conn(e.port) as c:
        for st in (204, 304):
            r = c.request("GET", "/o/nobody?status=%d" % st)
            h.status(r, st, "GET ?status=%d" % st)
            h.check(not r.has("Transfer-Encoding"), "%d response with Transfer-Encoding: %r"
                    % (st, r.headers))
            # the next request on the same connection proves no body bytes followed
            r2 = c.request("GET", "/o/after?size=4&sha=1")
            h.status(r2, 200, "GET after a %d on the same connection" % st)
            h.eq(len(r2.body), 4, "GET after %d: body length" % st)
            h.body_sha(r2, "GET after %d" % st)


def test_other_statuses(e):
    for st in (201, 404, 500, 503):
        r = h.request(e.port, "GET", "/o/st?status=%d&size=10&sha=1" % st)
        h.status(r, st, "origin status %d passed through" % st)
        h.eq(len(r.body), 10, "status %d body length" % st)
        h.body_sha(r, "status %d" % st)


def test_return_route(e):
    with h.Conn(e.port) as c:
        r = c.request("GET", "/ret")
        h.status(r, 201, "GET /ret (return route)")
        h.eq(r.get("X-A"), "b", "return route header X-A")
        h.eq(r.body, b"hi", "return route body")
        h.check(r.get("X-Origin-Conn") is None, "return route reached the origin")
        r = c.request("HEAD", "/ret")
        h.status(r, 201, "HEAD /ret")
        h.eq(r.body, b"", "HEAD /ret body")
        r = c.request("GET", "/ret?x=1")
        h.status(r, 201, "GET /ret?x=1 (exact path ignores the query)")
        h.eq(r.body, b"hi", "GET /ret?x=1 body")


def test_no_route_404(e):
    with h.Conn(e.port) as c:
        for target in ("/nothing", "/o", "/rett", "/"):
            r = c.request("GET", target)
            h.status(r, 404, "GET %s (no route)" % target)
            h.check(r.get("X-Origin-Conn") is None, "GET %s: 404 came from the origin" % target)
        # and the connection is still fine for a routed request
        r = c.request("GET", "/o/after-404?size=2&sha=1")
        h.status(r, 200, "GET after 404 on the same connection")


HOP = ["connection", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization",
       "proxy-connection", "x-drop-me", "x-drop-too"]


def _forwarded(e, method, headers, body=None, version="HTTP/1.1", **kw):
    r = h.request(e.port, method, "/o/fwd?headers=1", headers=headers, body=body,
                  version=version, **kw)
    h.status(r, 200, "%s /o/fwd?headers=1" % method)
    line, hdrs = h.parse_request_block(r.body)
    return r, line, hdrs


def test_forwarded_headers(e):
    headers = [
        ("Connection", "keep-alive, X-Drop-Me"),
        ("Connection", "x-drop-too"),
        ("X-Drop-Me", "secret"),
        ("X-Drop-Too", "secret2"),
        ("X-Keep-Me", "kept"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Trailer", "X-T"),
        ("Upgrade", "foo/1"),
        ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
        ("Proxy-Connection", "keep-alive"),
        ("X-Forwarded-For", "10.1.2.3"),
        ("Via", "1.0 fred"),
        ("X-Forwarded-Proto", "https"),       # weir replaces it
    ]
    body = b"abcde"
    r, line, hdrs = _forwarded(e, "POST", headers + [("Content-Length", "5"), ("Content-Length", "5")],
                               body=body, host="example.test:1234")
    where = "forwarded request block %r" % r.body.decode("latin-1")
    h.check(line.startswith("POST /o/fwd?headers=1 ") and line.endswith(" HTTP/1.1"),
            "forwarded request line %r (%s)" % (line, where))
    names = [k.lower() for k, _ in hdrs]
    for n in HOP:
        h.check(n not in names, "hop-by-hop field %r was forwarded; %s" % (n, where))
    h.eq(h.hget_all(hdrs, "X-Keep-Me"), ["kept"], "end-to-end field X-Keep-Me")
    h.eq(h.hget_all(hdrs, "Host"), ["example.test:1234"], "Host forwarded unchanged")
    xff = ", ".join(h.hget_all(hdrs, "X-Forwarded-For"))
    h.check(re.fullmatch(r"10\.1\.2\.3\s*,\s*127\.0\.0\.1", xff) is not None,
            "X-Forwarded-For: expected '10.1.2.3, 127.0.0.1' (appended), got %r" % xff)
    h.eq(h.hget_all(hdrs, "X-Forwarded-Proto"), ["http"], "X-Forwarded-Proto (client sent https)")
    via = ", ".join(h.hget_all(hdrs, "Via"))
    h.check(re.fullmatch(r"1\.0 fred\s*,\s*1\.1 weir", via) is not None,
            "Via: expected '1.0 fred, 1.1 weir' (appended), got %r" % via)
    cl = h.hget_all(hdrs, "Content-Length")
    te = h.hget_all(hdrs, "Transfer-Encoding")
    h.check(len(cl) + len(te) == 1,
            "exactly one framing field expected, got Content-Length %r, Transfer-Encoding %r; %s"
            % (cl, te, where))
    if cl:
        h.eq(cl, ["5"], "forwarded Content-Length")
    h.eq(r.get("X-Request-Bytes"), "5", "origin received body bytes")
    h.eq(r.get("X-Request-Sha256"), h.sha256(body), "origin received body sha256")


def test_forwarded_minimal(e):
    # no XFF / Via from the client: weir adds them; a GET has no TE and at most CL: 0
    r, line, hdrs = _forwarded(e, "GET", [("X-Keep-Me", "1")], host="h.example")
    where = "forwarded block %r" % r.body.decode("latin-1")
    h.eq(h.hget_all(hdrs, "X-Forwarded-For"), ["127.0.0.1"], "X-Forwarded-For (client had none)")
    h.eq(h.hget_all(hdrs, "X-Forwarded-Proto"), ["http"], "X-Forwarded-Proto")
    h.eq(h.hget_all(hdrs, "Via"), ["1.1 weir"], "Via (client had none)")
    h.eq(h.hget_all(hdrs, "Host"), ["h.example"], "Host")
    h.check(not h.hget_all(hdrs, "Transfer-Encoding"), "GET forwarded with Transfer-Encoding; " + where)
    cl = h.hget_all(hdrs, "Content-Length")
    h.check(cl in ([], ["0"]), "GET forwarded with Content-Length %r; %s" % (cl, where))
    # chunked request body: forwarded with exactly one framing field, no CL+TE
    r, line, hdrs = _forwarded(e, "POST", [], body=b"x" * 1000, chunked=True, chunk_sizes=100)
    where = "forwarded block %r" % r.body.decode("latin-1")
    cl = h.hget_all(hdrs, "Content-Length")
    te = h.hget_all(hdrs, "Transfer-Encoding")
    h.check(len(cl) + len(te) == 1, "chunked upload: exactly one framing field expected; " + where)
    if te:
        h.eq([v.lower() for v in te], ["chunked"], "forwarded Transfer-Encoding")
    else:
        h.eq(cl, ["1000"], "forwarded Content-Length for a de-chunked body")
    h.eq(r.get("X-Request-Bytes"), "1000", "chunked upload bytes at origin")
    # HTTP/1.0 client: forwarded as HTTP/1.1
    r, line, hdrs = _forwarded(e, "GET", [], version="HTTP/1.0")
    h.check(line.endswith(" HTTP/1.1"), "HTTP/1.0 request forwarded with request line %r" % line)


def test_response_headers(e):
    r = h.request(e.port, "GET", "/o/via?size=1")
    h.status(r, 200, "GET /o/via")
    via = ", ".join(r.get_all("Via"))
    h.check(re.search(r"(^|,)\s*1\.1 weir\s*$", via) is not None,
            "response Via: expected to end with '1.1 weir', got %r (headers %r)" % (via, r.headers))
    for n in ("Keep-Alive", "Proxy-Connection", "Trailer", "Upgrade"):
        h.check(not r.has(n), "response carries hop-by-hop field %s: %r" % (n, r.headers))
    conn = ",".join(r.get_all("Connection")).lower()
    h.check("close" not in conn, "keep-alive response says Connection: %r" % conn)


def test_http10_client(e):
    # HTTP/1.0 without keep-alive: weir answers and closes
    with h.Conn(e.port) as c:
        c.send(h.build_request("GET", "/o/10?size=100&sha=1", version="HTTP/1.0"))
        r = c.read_response("GET")
        h.status(r, 200, "HTTP/1.0 GET")
        h.eq(len(r.body), 100, "HTTP/1.0 GET body length")
        h.body_sha(r, "HTTP/1.0 GET")
        c.expect_closed(what="HTTP/1.0 connection without keep-alive")


def test_connection_close_client(e):
    with h.Conn(e.port) as c:
        r = c.request("GET", "/o/cc?size=10", headers=[("Connection", "close")])
        h.status(r, 200, "GET with Connection: close")
        h.eq(len(r.body), 10, "body length")
        c.expect_closed(what="client sent Connection: close")


GOOD_CFG = """\
workers: 1
listen:
  - address: 127.0.0.1:1
upstreams:
  app:
    servers: [127.0.0.1:2]
    keepalive: 8
    connect_timeout: 1s
    read_timeout: 2s
routes:
  - path: /ret
    return: {status: 200, body: "x"}
  - path_prefix: /
    upstream: app
    max_body: 1m
"""

# (text, expected line of the error)
BAD_CFGS = [
    ("workers: 1\nlisten:\n  - address: 127.0.0.1:1\n    listn: x\n", 4),           # unknown key
    ("workers: 1\nlistn:\n  - address: 127.0.0.1:1\n", 2),                          # unknown top key
    ("workers: [1]\nlisten:\n  - address: 127.0.0.1:1\n", 1),                       # wrong type
    ("listen:\n  - address: 127.0.0.1:1\nroutes:\n  - path_prefix: /\n    upstream: nope\n", 5),
    ("listen:\n  - address: 127.0.0.1:1\nupstreams:\n  app:\n    servers: [127.0.0.1:2]\n"
     "    read_timeout: soon\n", 6),                                                 # bad duration
]


def test_config_check(e):
    good = h.write_config(GOOD_CFG, "good.yaml")
    rc, out, err = h.run_cli(["-t", "-c", good])
    h.eq(rc, 0, "weir -t -c good.yaml exit status (stdout %r, stderr %r)" % (out, err))
    for i, (text, line) in enumerate(BAD_CFGS):
        path = h.write_config(text, "bad%d.yaml" % i)
        rc, out, err = h.run_cli(["-t", "-c", path])
        h.eq(rc, 2, "weir -t -c bad%d.yaml exit status (stderr %r)" % (i, err))
        m = re.search(re.escape(os.path.basename(path)) + r":(\d+):(\d+): \S", err)
        h.check(m is not None, "bad%d.yaml: stderr has no 'FILE:LINE:COL: message': %r\nconfig:\n%s"
                % (i, err, text))
        h.eq(int(m.group(1)), line, "bad%d.yaml: error line in %r" % (i, err.strip()))
        h.check(int(m.group(2)) >= 1, "bad%d.yaml: column %s" % (i, m.group(2)))
    # a missing file is an error too
    rc, out, err = h.run_cli(["-t", "-c", os.path.join(h.tmpdir(), "does-not-exist.yaml")])
    h.check(rc != 0, "weir -t -c missing-file exited 0")


def test_version(e):
    rc, out, err = h.run_cli(["-v"])
    h.eq(rc, 0, "weir -v exit status (stderr %r)" % err)
    h.check(re.search(r"\d+\.\d+\.\d+", out + err) is not None,
            "weir -v prints no version: stdout %r stderr %r" % (out, err))


def test_still_alive(e):
    e.weir.check_alive("the basic tests")
    r = h.request(e.port, "GET", "/o/end?size=1")
    h.status(r, 200, "final GET")


if __name__ == "__main__":
    h.main([test_get, test_get_keepalive_sequence, test_head, test_post_put_content_length,
            test_post_put_chunked, test_response_framings, test_chunked_many_small_chunks,
            test_no_body_statuses,
            test_other_statuses, test_return_route, test_no_route_404, test_forwarded_headers,
            test_forwarded_minimal, test_response_headers, test_http10_client,
            test_connection_close_client, test_config_check, test_version, test_still_alive],
           setup=setup)
