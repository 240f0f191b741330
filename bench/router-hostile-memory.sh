#!/usr/bin/env bash
# Memory under a hostile load (issue 14): CONNS connections (3,000) each sending 60 KB of
# a request head that never ends, against `slipway router` (release build) and HAProxy
# in the same run. Prints each one's peak RSS while the connections are open and its RSS
# 5 s after they closed, and the ratios to HAProxy.
# Target for slipway: peak < 150 MB, < 64 MB five seconds after close.
#
#   bench/router-hostile-memory.sh     # CONNS=3000 HEAD_KB=60 THREADS=1 (workers of each)
#
# Needs: python3, haproxy (apt-get install -y haproxy). Loopback only; bounded in time.
set -euo pipefail
CONNS=${CONNS:-3000}; HEAD_KB=${HEAD_KB:-60}; THREADS=${THREADS:-1}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
command -v haproxy >/dev/null || { echo "missing haproxy: apt-get install -y haproxy"; exit 2; }
cargo build --release -p slipway
ulimit -n 20000
work=$(mktemp -d -t router-hostile-memory.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "logs in $work" || rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The upstream never sees a request here (every head is refused); it only has to exist.
up=$(free_port)
python3 -m http.server --bind 127.0.0.1 "$up" >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$up/" && break; sleep 0.05; done

# One hostile run against the proxy on $1 (pid $2): prints "peak_kib after_kib answers".
attack() {
  python3 - "$1" "$2" "$CONNS" "$HEAD_KB" <<'PY'
import collections, socket, sys, time
port, pid, n, kb = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])
head = b"GET / HTTP/1.1\r\nHost: static\r\nX-Big: "
payload = head + b"a" * (kb * 1024 - len(head))   # no end of head, ever
peak = rss()
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setblocking(False)
    socks.append(s)
    if i % 200 == 0: peak = max(peak, rss())
sent = [0] * n; answer = [b""] * n; done = [False] * n
deadline = time.time() + 60
while not all(done) and time.time() < deadline:
    for i, s in enumerate(socks):
        if done[i]: continue
        try:
            if sent[i] < len(payload):
                sent[i] += s.send(payload[sent[i]:sent[i] + 16384])
        except BlockingIOError: pass
        except OSError: done[i] = True
        try:
            data = s.recv(4096)
            if data: answer[i] += data
            else: done[i] = True
        except BlockingIOError: pass
        except OSError: done[i] = True
    peak = max(peak, rss())
hwm = [int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM")][0]
for s in socks: s.close()
time.sleep(5)
after = rss()
codes = collections.Counter(a.split(b" ")[1].decode() if a.startswith(b"HTTP/") else "none" for a in answer)
print(max(peak, hwm), after, ",".join(f"{k}x{v}" for k, v in sorted(codes.items())))
PY
}

rss_of() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# slipway router, a fresh process.
ours=$(free_port)
TOKIO_WORKER_THREADS=$THREADS target/release/slipway router --listen "127.0.0.1:$ours" \
  --backend "http://127.0.0.1:$up=100" >"$work/router.log" 2>&1 & pids+=($!)
router=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$ours/" && break; sleep 0.05; done
ours_idle=$(rss_of "$router")
read -r ours_peak ours_after ours_codes < <(attack "$ours" "$router")

# HAProxy 2.x with its defaults (16 KB buffers), a fresh process.
ha=$(free_port)
cat >"$work/haproxy.cfg" <<CONF
global
  nbthread $THREADS
  maxconn 8000
defaults
  mode http
  timeout connect 2s
  timeout client 15s
  timeout server 15s
  timeout http-request 15s
frontend f
  bind 127.0.0.1:$ha
  default_backend b
backend b
  server s1 127.0.0.1:$up
CONF
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 & pids+=($!)
hap=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$ha/" && break; sleep 0.05; done
ha_idle=$(rss_of "$hap")
read -r ha_peak ha_after ha_codes < <(attack "$ha" "$hap")

mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN{printf "%.2f", (y > 0) ? x/y : 0}'; }
echo "$CONNS connections x ${HEAD_KB} KB unfinished head, $THREADS worker(s) each"
printf '%-16s %10s %12s %18s  %s\n' proxy "idle MiB" "peak MiB" "5 s after close" answers
printf '%-16s %10s %12s %18s  %s\n' "slipway router" "$(mib "$ours_idle")" "$(mib "$ours_peak")" "$(mib "$ours_after")" "$ours_codes"
printf '%-16s %10s %12s %18s  %s\n' "haproxy" "$(mib "$ha_idle")" "$(mib "$ha_peak")" "$(mib "$ha_after")" "$ha_codes"
echo "ratio slipway/haproxy: peak $(ratio "$ours_peak" "$ha_peak"), after close $(ratio "$ours_after" "$ha_after")"
echo "target: slipway peak < 150 MB, after close < 64 MB"
