"""Shared helpers for weir's integration tests (Python 3 stdlib only).

Each test_*.py is a standalone program: it starts the real binaries (weir and
weir-origin, from $WEIR_BIN / $ORIGIN_BIN), talks raw HTTP/1.1 over sockets and
exits 0 (pass), 1 (fail) or 77 (skip, reason printed).

    import harness as h

    def test_get(env):
        r = h.request(env.port, "GET", "/o/?size=10")
        h.eq(r.status, 200, "status")

    h.main([test_get], setup=...)

Every process started here is killed at exit, also on failure; on failure the
stderr (and stdout) of every process is printed.
"""

import atexit
import hashlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

SOCK_TIMEOUT = 5.0
START_TIMEOUT = 10.0

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_SKIP = 77


class Skip(Exception):
    """Raise to skip the whole program (exit 77)."""


class TestFailure(AssertionError):
    pass


# --------------------------------------------------------------------------
# binaries and processes
# --------------------------------------------------------------------------

def _bin(env_name, default_rel):
    path = os.environ.get(env_name)
    if not path:
        path = os.path.join(REPO, default_rel)
    return path


def weir_bin():
    return _bin("WEIR_BIN", "build-it/src/weir")


def origin_bin():
    return _bin("ORIGIN_BIN", "build-it/tools/weir-origin")


def require_binaries():
    for name, path in (("WEIR_BIN", weir_bin()), ("ORIGIN_BIN", origin_bin())):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise Skip("%s not found or not executable: %s" % (name, path))


_tmpdir = None


def tmpdir():
    global _tmpdir
    if _tmpdir is None:
        _tmpdir = tempfile.mkdtemp(prefix="weir-it-")
    return _tmpdir


_procs = []          # every Proc started, for cleanup and failure dumps
_procs_lock = threading.Lock()


class Proc:
    """A child process whose stdout/stderr go to files (no pipe can fill)."""

    def __init__(self, name, argv, env=None):
        self.name = name
        self.argv = list(argv)
        d = tmpdir()
        self.out_path = os.path.join(d, "%s.%d.stdout" % (name, len(_procs)))
        self.err_path = os.path.join(d, "%s.%d.stderr" % (name, len(_procs)))
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                      stdout=self._out, stderr=self._err,
                                      env=env)
        self.pid = self.popen.pid
        with _procs_lock:
            _procs.append(self)

    def alive(self):
        return self.popen.poll() is None

    def returncode(self):
        return self.popen.poll()

    def stdout(self):
        self._out.flush()
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        self._err.flush()
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout):
        """Return the exit status, or None if still running after timeout."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.alive():
            try:
                self.popen.kill()
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def stop(self, timeout=5):
        """SIGTERM, then SIGKILL after timeout. Returns the exit status."""
        if self.alive():
            self.signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.kill()
        return self.popen.poll()

    def describe(self):
        return "%s (pid %d, rc %s): %s" % (self.name, self.pid, self.popen.poll(),
                                          " ".join(self.argv))


def _cleanup():
    with _procs_lock:
        procs = list(_procs)
    for p in procs:
        p.kill()


atexit.register(_cleanup)


def _on_signal(signum, frame):
    print("killed by signal %d; stopping child processes" % signum)
    dump_processes()
    _cleanup()
    os._exit(EXIT_FAIL)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def dump_processes(tail=8000):
    with _procs_lock:
        procs = list(_procs)
    for p in procs:
        sys.stdout.write("---- %s\n" % p.describe())
        for what, text in (("stderr", p.stderr()), ("stdout", p.stdout())):
            if text:
                if len(text) > tail:
                    text = "...(%d bytes cut)...\n" % (len(text) - tail) + text[-tail:]
                sys.stdout.write("---- %s %s:\n%s\n" % (p.name, what, text.rstrip("\n")))
    sys.stdout.flush()


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_accepting(port, proc=None, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise TestFailure("%s exited (rc %s) before listening on %d" %
                              (proc.name, proc.returncode(), port))
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
            s.close()
            return
        except OSError as e:
            last = e
            time.sleep(0.05)
    raise TestFailure("nothing accepts on 127.0.0.1:%d after %.0fs (%s)" % (port, timeout, last))


class Origin:
    def __init__(self, proc, port):
        self.proc = proc
        self.port = port
        self.addr = "127.0.0.1:%d" % port

    def stats(self):
        """GET /_stats straight from the origin -> dict."""
        import json
        r = request(self.port, "GET", "/_stats")
        if r.status != 200:
            raise TestFailure("origin /_stats: status %d" % r.status)
        return json.loads(r.body.decode())


def start_origin(threads=None, port=None):
    port = port or free_port()
    argv = [origin_bin(), "--listen", "127.0.0.1:%d" % port]
    if threads:
        argv += ["--threads", str(threads)]
    p = Proc("weir-origin", argv)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if "weir-origin listening on" in p.stdout():
            wait_accepting(port, p, timeout=2)
            return Origin(p, port)
        if not p.alive():
            break
        time.sleep(0.02)
    raise TestFailure("weir-origin did not print 'weir-origin listening on' (rc %s)" %
                      p.returncode())


class Weir:
    def __init__(self, proc, port, config_path=None):
        self.proc = proc
        self.port = port
        self.config_path = config_path

    def alive(self):
        return self.proc.alive()

    def check_alive(self, what=""):
        if not self.proc.alive():
            raise TestFailure("weir died%s (rc %s)" % (" after " + what if what else "",
                                                       self.proc.returncode()))


_cfg_count = [0]


def write_config(text, name=None):
    _cfg_count[0] += 1
    path = os.path.join(tmpdir(), name or ("weir-%d.yaml" % _cfg_count[0]))
    with open(path, "w") as f:
        f.write(text)
    return path


def start_weir(config=None, port=None, args=(), wait=True):
    """Start weir. `config` is YAML text (may contain {port}); the listen port
    is `port` or a fresh one. With config None, only `args` are passed."""
    port = port or free_port()
    argv = [weir_bin()]
    path = None
    if config is not None:
        path = write_config(config.replace("{port}", str(port)))
        argv += ["-c", path]
    argv += list(args)
    p = Proc("weir", argv)
    w = Weir(p, port, path)
    if wait:
        wait_accepting(port, p)
    return w


def simple_config(port_placeholder="{port}", upstreams=None, routes=None, top=None):
    """Build YAML text.

    upstreams: {name: {"servers": [...], other keys: raw YAML scalars}}
    routes:    list of raw YAML flow mappings (strings) e.g.
               "{path_prefix: /o/, upstream: app}"
    top:       dict of raw top-level scalars (workers: 2, ...)
    """
    lines = []
    for k, v in (top or {}).items():
        lines.append("%s: %s" % (k, v))
    lines.append("listen:")
    lines.append("  - address: 127.0.0.1:%s" % port_placeholder)
    if upstreams:
        lines.append("upstreams:")
        for name, u in upstreams.items():
            lines.append("  %s:" % name)
            for k, v in u.items():
                if k == "servers":
                    v = "[" + ", ".join(v) + "]"
                lines.append("    %s: %s" % (k, v))
    if routes:
        lines.append("routes:")
        for r in routes:
            lines.append("  - " + r)
    return "\n".join(lines) + "\n"


def run_cli(args, timeout=10):
    """Run weir with args, return (rc, stdout, stderr)."""
    try:
        cp = subprocess.run([weir_bin()] + list(args), stdin=subprocess.DEVNULL,
                            capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as ex:
        raise TestFailure("weir %s did not exit within %ds (stdout %r, stderr %r)" %
                          (" ".join(args), timeout, ex.stdout, ex.stderr))
    return cp.returncode, cp.stdout.decode("utf-8", "replace"), cp.stderr.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# raw HTTP/1.1 client
# --------------------------------------------------------------------------

class ConnClosed(Exception):
    """The peer closed (EOF or reset) before a complete message."""

    def __init__(self, msg, partial=None):
        Exception.__init__(self, msg)
        self.partial = partial


class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []        # [(name, value)] as received, in order
        self.body = b""
        self.trailers = []
        self.interim = []        # 1xx responses seen before this one: [(status, headers)]
        self.raw_head = b""
        self.chunked = False
        self.close_delimited = False

    def get_all(self, name):
        n = name.lower()
        return [v for (k, v) in self.headers if k.lower() == n]

    def get(self, name, default=None):
        v = self.get_all(name)
        return v[0] if v else default

    def has(self, name):
        return bool(self.get_all(name))

    def __repr__(self):
        return "<Response %s %s, %d header(s), body %d bytes>" % (
            self.status, self.reason, len(self.headers), len(self.body))


def build_request(method, target, headers=None, body=None, host="localhost", version="HTTP/1.1",
                  chunked=False, chunk_sizes=None):
    """Request bytes. headers: list of (name, value) (added after Host).
    Content-Length is added for a body unless chunked or already present."""
    hdrs = []
    if host is not None:
        hdrs.append(("Host", host))
    hdrs += list(headers or [])
    names = {k.lower() for k, _ in hdrs}
    payload = b""
    if body is not None:
        if chunked:
            if "transfer-encoding" not in names:
                hdrs.append(("Transfer-Encoding", "chunked"))
            payload = encode_chunked(body, chunk_sizes)
        else:
            if "content-length" not in names:
                hdrs.append(("Content-Length", str(len(body))))
            payload = bytes(body)
    head = "%s %s %s\r\n" % (method, target, version)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in hdrs)
    head += "\r\n"
    return head.encode("latin-1") + payload


def encode_chunked(body, chunk_sizes=None, rng=None):
    """Chunked encoding of body; chunk_sizes: int (fixed), list (cycled) or None (one chunk)."""
    body = memoryview(body)
    out = []
    i = 0
    n = len(body)
    k = 0
    while i < n:
        if chunk_sizes is None:
            sz = n - i
        elif isinstance(chunk_sizes, int):
            sz = chunk_sizes
        else:
            sz = chunk_sizes[k % len(chunk_sizes)]
            k += 1
        sz = max(1, min(sz, n - i))
        out.append(b"%x\r\n" % sz)
        out.append(body[i:i + sz].tobytes())
        out.append(b"\r\n")
        i += sz
    out.append(b"0\r\n\r\n")
    return b"".join(out)


class Conn:
    """One client connection with a read buffer."""

    def __init__(self, port, host="127.0.0.1", timeout=SOCK_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, want=65536):
        """Read more into buf. Returns False on EOF/reset."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            self.eof = True
            return False
        except socket.timeout:
            raise TestFailure("read timed out after %.1fs (have %d unparsed bytes: %r)" %
                              (self.sock.gettimeout(), len(self.buf), bytes(self.buf[:200])))
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _read_line(self, what, partial=None):
        """partial: list of body pieces already read (for ConnClosed.partial)."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > 1 << 20:
                raise TestFailure("line too long while reading %s" % what)
            if not self._fill():
                raise ConnClosed("connection closed while reading %s" % what,
                                 b"".join(partial) + bytes(self.buf) if partial is not None
                                 else bytes(self.buf))

    def _read_exact(self, n, what, partial=None):
        while len(self.buf) < n:
            if not self._fill(n - len(self.buf)):
                got = bytes(self.buf)
                raise ConnClosed("connection closed while reading %s: got %d of %d bytes" %
                                 (what, len(got), n),
                                 got if partial is None else b"".join(partial) + got)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _read_head(self):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[:i + 4])
                del self.buf[:i + 4]
                return head
            if len(self.buf) > 1 << 20:
                raise TestFailure("response header block > 1 MiB")
            if not self._fill():
                raise ConnClosed("connection closed before a complete response header block "
                                 "(got %r)" % bytes(self.buf[:300]), bytes(self.buf))

    def read_response(self, method="GET", allow_interim=True):
        """Read one response. 1xx (not 101) are collected in .interim unless
        allow_interim is False, in which case a 1xx is returned as is."""
        interim = []
        while True:
            head = self._read_head()
            r = parse_head(head)
            if 100 <= r.status < 200 and r.status != 101 and allow_interim:
                interim.append((r.status, r.headers))
                continue
            r.interim = interim
            break
        if 100 <= r.status < 200 or r.status in (204, 304) or method == "HEAD":
            return r
        te = ",".join(r.get_all("Transfer-Encoding")).strip().lower()
        if te:
            codings = [c.strip() for c in te.split(",") if c.strip()]
            if codings and codings[-1] == "chunked":
                r.chunked = True
                self._read_chunked_body(r)
                return r
            r.close_delimited = True
            r.body = self._read_to_close(r)
            return r
        cls = r.get_all("Content-Length")
        if cls:
            vals = set()
            for v in cls:
                for part in v.split(","):
                    vals.add(part.strip())
            if len(vals) != 1 or not list(vals)[0].isdigit():
                raise TestFailure("response has invalid/differing Content-Length: %r" % cls)
            n = int(list(vals)[0])
            r.body = self._read_exact(n, "response body (Content-Length %d, status %d)" %
                                      (n, r.status))
            return r
        r.close_delimited = True
        r.body = self._read_to_close(r)
        return r

    def _read_chunked_body(self, r):
        parts = []
        try:
            self._read_chunks(r, parts)
        except TestFailure as ex:
            raise TestFailure("%s -- while reading a chunked body (status %d), after %d body bytes "
                              "in %d chunks" % (ex, r.status, sum(map(len, parts)), len(parts)))
        except ConnClosed as ex:
            raise ConnClosed("%s -- in a chunked body (status %d), after %d body bytes in %d chunks"
                             % (ex, r.status, sum(map(len, parts)), len(parts)), ex.partial)

    def _read_chunks(self, r, parts):
        total = 0
        while True:
            line = self._read_line("chunk size", parts)
            size_txt = line.split(b";", 1)[0].strip()
            try:
                size = int(size_txt, 16)
            except ValueError:
                raise TestFailure("bad chunk size line in response: %r" % line)
            if size == 0:
                break
            parts.append(self._read_exact(size, "chunk data", parts))
            total += size
            crlf = self._read_exact(2, "chunk CRLF", parts)
            if crlf != b"\r\n":
                raise TestFailure("chunk data not followed by CRLF: %r" % crlf)
        while True:
            line = self._read_line("trailer", parts)
            if line == b"":
                break
            k, _, v = line.decode("latin-1").partition(":")
            r.trailers.append((k, v.strip()))
        r.body = b"".join(parts)

    def _read_to_close(self, r=None):
        try:
            while self._fill():
                pass
        except TestFailure as ex:
            if r is None:
                raise
            raise TestFailure("%s -- while reading a close-delimited body: the response %d had no "
                              "usable Content-Length/Transfer-Encoding; its head: %r"
                              % (ex, r.status, r.raw_head[:1500]))
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def expect_closed(self, timeout=SOCK_TIMEOUT, what="connection"):
        """Assert the peer closes (EOF or RST) within timeout, with no extra bytes."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            if self.buf:
                raise TestFailure("%s: unexpected bytes after the response: %r" %
                                  (what, bytes(self.buf[:200])))
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return
            except socket.timeout:
                raise TestFailure("%s: expected the connection to be closed, but it is still "
                                  "open after %.1fs" % (what, timeout))
            if data:
                raise TestFailure("%s: expected close, got more bytes: %r" % (what, data[:200]))
        finally:
            try:
                self.sock.settimeout(old)
            except OSError:
                pass

    def request(self, method, target, headers=None, body=None, **kw):
        """Send one request and read its response; a close before a complete
        response fails with the request named."""
        self.send(build_request(method, target, headers, body, **kw))
        try:
            return self.read_response(method)
        except ConnClosed as ex:
            raise TestFailure("%s %s: %s" % (method, target[:200], ex))


def parse_head(head):
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    status_line = lines[0]
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit() \
            or len(parts[1]) != 3:
        raise TestFailure("bad status line: %r" % status_line)
    r = Response()
    r.raw_head = head
    r.version = parts[0]
    r.status = int(parts[1])
    r.reason = parts[2] if len(parts) > 2 else ""
    for line in lines[1:]:
        if line == "":
            continue
        if ":" not in line:
            raise TestFailure("bad header line in response: %r" % line)
        k, _, v = line.partition(":")
        if k != k.strip() or not k:
            raise TestFailure("bad header name in response: %r" % line)
        r.headers.append((k, v.strip(" \t")))
    return r


def parse_request_block(block):
    """Parse a raw request header block (from the origin's headers=1) into
    (request_line, [(name, value)])."""
    text = block.decode("latin-1")
    if text.endswith("\r\n\r\n"):
        text = text[:-4]
    lines = text.split("\r\n")
    hdrs = []
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(":")
        hdrs.append((k, v.strip(" \t")))
    return lines[0], hdrs


def hget_all(hdrs, name):
    n = name.lower()
    return [v for (k, v) in hdrs if k.lower() == n]


def request(port, method, target, headers=None, body=None, timeout=SOCK_TIMEOUT, **kw):
    """One request on a fresh connection; returns the Response."""
    with Conn(port, timeout=timeout) as c:
        return c.request(method, target, headers, body, **kw)


def read_pipelined(conn, methods):
    """Read len(methods) responses in order (methods: list of request methods)."""
    return [conn.read_response(m) for m in methods]


# --------------------------------------------------------------------------
# data helpers
# --------------------------------------------------------------------------

def sha256(data):
    return hashlib.sha256(data).hexdigest()


ALNUM = b"abcdefghijklmnopqrstuvwxyz0123456789"
_pattern_cache = [b""]


def pattern(n):
    """The origin's size=N body: byte i is ALNUM[i % 36]."""
    if len(_pattern_cache[0]) < n:
        _pattern_cache[0] = ALNUM * (n // 36 + 1)
    return _pattern_cache[0][:n]


def pattern_check(body, n, what):
    """Assert body is exactly the origin's size=n pattern; names the first
    differing offset."""
    if len(body) != n:
        raise TestFailure("%s: body length %d, expected %d" % (what, len(body), n))
    want = pattern(n)
    if body != want:
        i = next(k for k in range(n) if body[k] != want[k])
        raise TestFailure("%s: body differs from the size=%d pattern at offset %d: got %r, expected %r"
                          % (what, n, i, body[i:i + 16], want[i:i + 16]))


def rand_bytes(n, seed=1):
    return random.Random(seed).randbytes(n)


# --------------------------------------------------------------------------
# assertions
# --------------------------------------------------------------------------

def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def eq(got, expected, what):
    if got != expected:
        g, e = repr(got), repr(expected)
        if len(g) > 300:
            g = g[:300] + "..."
        if len(e) > 300:
            e = e[:300] + "..."
        raise TestFailure("%s: expected %s, got %s" % (what, e, g))


def status(r, expected, what):
    if isinstance(expected, int):
        expected = (expected,)
    if r.status not in expected:
        body = r.body[:300]
        raise TestFailure("%s: expected status %s, got %d %s (headers %r, body %r)" %
                          (what, "/".join(map(str, expected)), r.status, r.reason,
                           r.headers, body))


def body_sha(r, what):
    """Check len/sha of a body against the origin's X-Body-Sha256."""
    want = r.get("X-Body-Sha256")
    check(want is not None, "%s: no X-Body-Sha256 header in %r" % (what, r.headers))
    got = sha256(r.body)
    if got != want.lower():
        raise TestFailure("%s: body sha256 mismatch: X-Body-Sha256 %s, body (%d bytes) %s" %
                          (what, want, len(r.body), got))


# --------------------------------------------------------------------------
# metrics (the admin listener's /metrics)
# --------------------------------------------------------------------------

_SAMPLE = re.compile(r'^(weir_[a-z_]+)(\{[^}]*\})? ([0-9.e+]+)$')


def metrics(admin_port):
    """GET /metrics -> {(name, '{labels}' or ''): value}."""
    r = request(admin_port, "GET", "/metrics")
    if r.status != 200:
        raise TestFailure("/metrics: status %d" % r.status)
    out = {}
    for line in r.body.decode().splitlines():
        m = _SAMPLE.match(line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def agent_metric(admin_port, name, agent):
    """One per-agent sample (0 when absent)."""
    return metrics(admin_port).get((name, '{agent="%s"}' % agent), 0)


# --------------------------------------------------------------------------
# runner
# --------------------------------------------------------------------------

def main(tests, setup=None, name=None):
    """Run setup() (returns an env object passed to each test), then each test
    in order. Any failure: exit 1, with process output dumped."""
    name = name or os.path.basename(sys.argv[0])
    try:
        require_binaries()
        env = setup() if setup else None
    except Skip as e:
        print("SKIP %s: %s" % (name, e))
        sys.stdout.flush()
        sys.exit(EXIT_SKIP)
    except Exception:
        print("FAIL %s: setup failed" % name)
        traceback.print_exc(file=sys.stdout)
        dump_processes()
        sys.stdout.flush()
        _cleanup()
        sys.exit(EXIT_FAIL)
    failed = []
    skipped = 0
    for t in tests:
        t0 = time.monotonic()
        try:
            t(env)
        except Skip as e:
            print("skip %s: %s" % (t.__name__, e))
            skipped += 1
            continue
        except Exception as e:
            failed.append(t.__name__)
            print("FAIL %s (%.2fs): %s: %s" % (t.__name__, time.monotonic() - t0,
                                               type(e).__name__, e))
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
            continue
        print("ok   %s (%.2fs)" % (t.__name__, time.monotonic() - t0))
        sys.stdout.flush()
    if failed:
        print("FAILED %s: %s" % (name, ", ".join(failed)))
        dump_processes()
        sys.stdout.flush()
        _cleanup()
        sys.exit(EXIT_FAIL)
    if tests and skipped == len(tests):
        print("SKIP %s: every test skipped" % name)
        sys.stdout.flush()
        _cleanup()
        sys.exit(EXIT_SKIP)
    print("PASS %s" % name)
    sys.stdout.flush()
    _cleanup()
    sys.exit(EXIT_PASS)
