#!/usr/bin/env bash
# weir quick start: install build dependencies (Debian 12, as root), build,
# and run weir in front of the demo origin with the WAF agent (weir-waf: the
# OWASP Core Rule Set on libmodsecurity3) inspecting every request.
#
#   bash tools/quickstart.sh           # runs until Ctrl-C
#   bash tools/quickstart.sh --check   # one allowed, two blocked, then exit (CI);
#                                      # fails unless the WAF blocks
set -euo pipefail
cd "$(dirname "$0")/.."
B=${WEIR_BUILD_DIR:-build}     # build directory (default build/)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "==> installing build dependencies (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $(cat tools/deps.txt) >/dev/null
fi

echo "==> building (meson + ninja)"
[ -f "$B/build.ninja" ] || meson setup "$B" >/dev/null
ninja -C "$B" >/dev/null
if [ ! -x "$B"/tools/weir-waf ]; then
	# $B was configured before libmodsecurity-dev was installed
	meson setup --reconfigure "$B" >/dev/null
	ninja -C "$B" >/dev/null
fi
[ -x "$B"/tools/weir-waf ] || { echo "weir-waf not built: is libmodsecurity-dev installed?" >&2; exit 1; }

ORIGIN_ADDR=127.0.0.1:9000
WEIR_ADDR=127.0.0.1:8080
AGENT_SOCK=/tmp/weir-demo-waf.sock
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

echo "==> starting the demo origin on $ORIGIN_ADDR"
"$B"/tools/weir-origin --listen "$ORIGIN_ADDR" --quiet &
pids+=($!)
echo "==> starting the WAF agent on $AGENT_SOCK (OWASP CRS 3.3, paranoia level 1)"
rm -f "$AGENT_SOCK"
"$B"/tools/weir-waf --listen "unix:$AGENT_SOCK" --workers 2 --quiet &
pids+=($!)
echo "==> starting weir on $WEIR_ADDR (tools/demo.yaml: every request goes past the WAF)"
"$B"/src/weir -c tools/demo.yaml &
pids+=($!)

python3 - "$WEIR_ADDR" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
HDRS = b"Host: demo\r\nUser-Agent: quickstart\r\nAccept: */*\r\nConnection: close\r\n"

def exchange(raw):
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(raw)
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode(errors="replace"), body.decode(errors="replace")

deadline = time.time() + 20
while True:
    try:
        head, body = exchange(b"GET /hello?size=13 HTTP/1.1\r\n" + HDRS + b"\r\n")
        if head.startswith("HTTP/1.1 200"):
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("weir (or the WAF agent) did not start")
    time.sleep(0.2)
print("==> GET /hello?size=13 (allowed by the WAF):")
print(head + "\n\n" + body + "\n")
q = b"/search?q=1%27%20UNION%20SELECT%20username,password%20FROM%20users--"
head2, body2 = exchange(b"GET " + q + b" HTTP/1.1\r\n" + HDRS + b"\r\n")
print("==> GET " + q.decode() + " (SQL injection: blocked by the CRS):")
print(head2 + "\n\n" + body2)
js = b'{"comment": "<script>alert(document.cookie)</script>"}'
head3, body3 = exchange(b"POST /api/comments HTTP/1.1\r\n" + HDRS +
                        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(js) + js)
print("==> POST /api/comments with an XSS payload in a JSON body (blocked by the CRS):")
print(head3 + "\n\n" + body3)
if not head.startswith("HTTP/1.1 200"):
    sys.exit("the allowed request was not answered 200")
if not head2.startswith("HTTP/1.1 403") or not head3.startswith("HTTP/1.1 403"):
    sys.exit("the WAF did not block")
PY

if [ "${1:-}" = "--check" ]; then
	echo "==> quick start check passed"
	exit 0
fi
echo "==> weir is proxying http://$WEIR_ADDR/ to the origin past the WAF; try:"
echo "    curl -v -H 'Host: demo' 'http://$WEIR_ADDR/anything?size=100&chunked=1'"
echo "    curl -v -H 'Host: demo' 'http://$WEIR_ADDR/?file=../../etc/passwd'   # blocked"
echo "    curl -s http://127.0.0.1:9090/metrics | grep weir_agent_rule_blocks   # CRS rule ids"
echo "    Ctrl-C stops all three."
wait
