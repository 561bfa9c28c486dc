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
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

echo "==> starting the demo origin on $ORIGIN_ADDR"
build/tools/weir-origin --listen "$ORIGIN_ADDR" --quiet &
pids+=($!)
echo "==> starting weir on $WEIR_ADDR (embedded config, --upstream $ORIGIN_ADDR)"
build/src/weir --listen "$WEIR_ADDR" --upstream "$ORIGIN_ADDR" &
pids+=($!)

python3 - "$WEIR_ADDR" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
deadline = time.time() + 10
while True:
    try:
        s = socket.create_connection((host, int(port)), timeout=2)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("weir did not start")
        time.sleep(0.05)
s.sendall(b"GET /hello?size=13 HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
head, _, body = data.partition(b"\r\n\r\n")
print("==> GET http://%s/hello?size=13 through weir:" % sys.argv[1])
print(head.decode(errors="replace"))
print()
print(body.decode(errors="replace"))
if not head.startswith(b"HTTP/1.1 200"):
    sys.exit("unexpected response")
PY

if [ "${1:-}" = "--check" ]; then
	echo "==> quick start check passed"
	exit 0
fi
echo "==> weir is proxying http://$WEIR_ADDR/ to the origin; try:"
echo "    curl -v 'http://$WEIR_ADDR/anything?size=100&chunked=1'"
echo "    Ctrl-C stops both."
wait
