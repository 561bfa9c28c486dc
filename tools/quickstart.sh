#!/usr/bin/env bash
# weir quick start: install build dependencies (Debian 12, as root), build,
# and run weir in front of the demo origin.
#
#   bash tools/quickstart.sh           # runs until Ctrl-C
#   bash tools/quickstart.sh --check   # one request through, then exit (CI)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "==> installing build dependencies (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $(cat tools/deps.txt) >/dev/null
fi

echo "==> building (meson + ninja)"
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

ORIGIN_ADDR=127.0.0.1:9000
WEIR_ADDR=127.0.0.1:8080
AGENT_SOCK=/tmp/weir-demo-rules.sock
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

echo "==> starting the demo origin on $ORIGIN_ADDR"
build/tools/weir-origin --listen "$ORIGIN_ADDR" --quiet &
pids+=($!)
echo "==> starting the rule agent on $AGENT_SOCK (tools/demo-rules.txt)"
rm -f "$AGENT_SOCK"
build/tools/weir-agent-rules --rules tools/demo-rules.txt --listen "unix:$AGENT_SOCK" --quiet &
pids+=($!)
echo "==> starting weir on $WEIR_ADDR (tools/demo.yaml: every request goes past the agent)"
build/src/weir -c tools/demo.yaml &
pids+=($!)

python3 - "$WEIR_ADDR" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)

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

deadline = time.time() + 10
while True:
    try:
        head, body = exchange(b"GET /hello?size=13 HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        if head.startswith("HTTP/1.1 200"):
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("weir (or its agent) did not start")
    time.sleep(0.1)
print("==> GET /hello?size=13 (allowed by the agent):")
print(head + "\n\n" + body + "\n")
head2, body2 = exchange(b"GET /admin/ HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
print("==> GET /admin/ (blocked by rule 101):")
print(head2 + "\n\n" + body2)
body = b"q=1 UNION SELECT password FROM users"
head3, body3 = exchange(b"POST /search HTTP/1.1\r\nHost: demo\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
print("==> POST /search with 'UNION SELECT' in the body (blocked by rule 104):")
print(head3 + "\n\n" + body3)
if not head2.startswith("HTTP/1.1 403") or not head3.startswith("HTTP/1.1 403"):
    sys.exit("the agent did not block")
PY

if [ "${1:-}" = "--check" ]; then
	echo "==> quick start check passed"
	exit 0
fi
echo "==> weir is proxying http://$WEIR_ADDR/ to the origin past the rule agent; try:"
echo "    curl -v 'http://$WEIR_ADDR/anything?size=100&chunked=1'"
echo "    curl -v 'http://$WEIR_ADDR/.git/config'            # blocked"
echo "    curl -s http://127.0.0.1:9090/metrics | grep weir_agent"
echo "    Ctrl-C stops both."
wait
