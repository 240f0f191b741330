#!/usr/bin/env bash
# Resident memory of the static router holding 1,000 idle keep-alive client connections
# (each has made one proxied request first). Target: < 40 MiB.
#
#   bench/router-memory.sh            # CONNS=1000 by default
set -euo pipefail
CONNS=${CONNS:-1000}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
cargo build --release -p slipway
ulimit -n 8192 2>/dev/null || true
work=$(mktemp -d -t router-memory.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# One tiny upstream (python, keep-alive) and the router in front of it.
python3 - "$work/upstream.port" <<'PY' & pids+=($!)
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else header and body writes wait on delayed ACKs
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "3"); self.end_headers(); self.wfile.write(b"ok\n")
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024
s = S(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
for _ in $(seq 100); do [ -s "$work/upstream.port" ] && break; sleep 0.05; done
up=$(cat "$work/upstream.port")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-1} target/release/slipway router \
  --listen "127.0.0.1:$port" --backend "http://127.0.0.1:$up=100" >"$work/router.log" 2>&1 & pids+=($!)
router=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.05; done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$router/status"; }
echo "router RSS before: $(( $(rss) / 1024 )) MiB"

python3 - "$port" "$CONNS" "$router" <<'PY'
import socket, sys, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
req = b"GET / HTTP/1.1\r\nHost: bench\r\nX-Slipway-Key: k\r\n\r\n"
conns = []
ok = 0
# One request per connection, answered before the next connection opens, so the router
# holds n client connections but needs only one upstream connection.
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    s.sendall(req)
    conns.append(s)
    data = b""
    while b"ok\n" not in data:
        chunk = s.recv(4096)
        if not chunk: break
        data += chunk
    ok += data.startswith(b"HTTP/1.1 200")
time.sleep(0.5)
rss = int([l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0])
fds = len(__import__("os").listdir(f"/proc/{pid}/fd"))
established = sum(1 for l in open("/proc/net/tcp").readlines()[1:] if l.split()[3] == "01" and int(l.split()[1].split(":")[1], 16) == port)
print(f"{ok}/{n} requests answered 200; connections held open: {n}; router fds: {fds}; established on the router port: {established}")
print(f"router RSS with {n} idle keep-alive connections: {rss/1024:.1f} MiB (target < 40 MiB)")
for s in conns: s.close()
PY
