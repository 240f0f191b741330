#!/usr/bin/env bash
# What a 90/10 weighted split costs through `slipway router`, next to HAProxy and nginx
# doing the same split, and next to no proxy at all (the upstream's own limit).
#
#   bench/proxy-baseline.sh                                    # the three baselines only
#   SLIPWAY_BIN=target/release/slipway bench/proxy-baseline.sh # and our router (bench/proxy.sh does this)
#
# Every proxy gets one worker (HAProxy `nbthread 1`, nginx `worker_processes 1`, our
# router TOKIO_WORKER_THREADS=1): on a 2-core machine that also runs wrk and the upstreams,
# that is the like-for-like comparison. The upstreams are one nginx worker answering
# "v1"/"v2" on two ports; all of it listens on 127.0.0.1 only, on ports the OS picks.
#
# Each round runs wrk (-t1, CONNECTIONS connections, DURATION) against every row in turn,
# starting one row later each round so no row always runs first. Per row: requests/s, p50
# and p99 latency, and the CPU time the proxy process (with its children: nginx's worker)
# spent per request in µs — for `direct`, the upstream's. CPU per request is the steadiest
# figure on a noisy machine. Ratios against HAProxy are taken within each round (paired),
# then the median over rounds is printed.
#
# Env: ROUNDS (3), DURATION (8s), CONNECTIONS (50), SLIPWAY_BIN (unset: no `slipway` row).
# Needs wrk, haproxy, nginx, curl, python3 (apt-get install -y wrk haproxy nginx-light).
set -euo pipefail
ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-8s}; CONNECTIONS=${CONNECTIONS:-50}
for tool in wrk haproxy nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y wrk haproxy nginx-light curl python3" >&2; exit 2; }
done
if [ -n "${SLIPWAY_BIN:-}" ] && [ ! -x "$SLIPWAY_BIN" ]; then
  echo "SLIPWAY_BIN=$SLIPWAY_BIN is not an executable (cargo build --release -p slipway)" >&2; exit 2
fi

work=$(mktemp -d -t slipway-proxy-baseline.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Five distinct free loopback ports, all held open until the last is chosen. Another
# program could take one before we bind it; the readiness check below would then fail.
read -r V1 V2 HA NG OURS < <(python3 -c '
import socket
held = [socket.socket() for _ in range(5)]
for s in held: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in held))')

cat >"$work/upstreams.conf" <<CONF
worker_processes 1; daemon off; pid $work/upstreams.pid; error_log $work/upstreams.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000;
  server { listen 127.0.0.1:$V1; location / { return 200 "v1\n"; } }
  server { listen 127.0.0.1:$V2; location / { return 200 "v2\n"; } } }
CONF
cat >"$work/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000;
  upstream releases { server 127.0.0.1:$V1 weight=9; server 127.0.0.1:$V2 weight=1; keepalive 64; }
  server { listen 127.0.0.1:$NG;
    location / { proxy_pass http://releases; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
cat >"$work/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend public
  bind 127.0.0.1:$HA
  default_backend releases
backend releases
  balance roundrobin
  http-reuse always
  server v1 127.0.0.1:$V1 weight 90
  server v2 127.0.0.1:$V2 weight 10
CONF

declare -A PID PORT LOG
start() { # row port log command…
  local row=$1 port=$2 log=$3; shift 3
  "$@" >"$log" 2>&1 &
  pids+=($!); PID[$row]=$!; PORT[$row]=$port; LOG[$row]=$log
}
start direct "$V1" "$work/upstreams.log" nginx -c "$work/upstreams.conf"
start haproxy "$HA" "$work/haproxy.log" haproxy -f "$work/haproxy.cfg" -db
start nginx "$NG" "$work/nginx.log" nginx -c "$work/nginx.conf"
rows=(direct haproxy nginx)
if [ -n "${SLIPWAY_BIN:-}" ]; then
  start slipway "$OURS" "$work/slipway.log" env TOKIO_WORKER_THREADS=1 "$SLIPWAY_BIN" router \
    --listen "127.0.0.1:$OURS" --backend "http://127.0.0.1:$V1=90" --backend "http://127.0.0.1:$V2=10"
  rows+=(slipway)
fi

# Ready when it answers through to an upstream; give up after 10 s.
for row in "${rows[@]}"; do
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:${PORT[$row]}/" 2>/dev/null && continue 2
    kill -0 "${PID[$row]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "$row does not answer on 127.0.0.1:${PORT[$row]}:" >&2; cat "${LOG[$row]}" >&2; exit 1
done

TICKS_PER_S=$(getconf CLK_TCK)
# utime + stime, in clock ticks, of a process and its direct children (nginx's worker).
cpu_ticks() {
  local total=0 pid
  for pid in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    total=$((total + $(awk '{print $14 + $15}' /proc/"$pid"/stat 2>/dev/null || echo 0)))
  done
  echo "$total"
}
# wrk prints 812.00us, 1.92ms or 1.01s; in microseconds.
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1e3; else if (v ~ /s$/) print n * 1e6; else print n }'; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { print (y > 0) ? x / y : 0 }'; }
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A RPS P50 P99 CPU ERRORS R_RPS R_P99 R_CPU
for round in $(seq 1 "$ROUNDS"); do
  declare -A now_rps now_p99 now_cpu
  n=${#rows[@]}
  for i in $(seq 0 $((n - 1))); do
    row=${rows[$(((i + round - 1) % n))]}
    before=$(cpu_ticks "${PID[$row]}")
    out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:${PORT[$row]}/")
    after=$(cpu_ticks "${PID[$row]}")
    rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    p50=$(to_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
    p99=$(to_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    cpu=$(awk -v d=$((after - before)) -v t="$TICKS_PER_S" -v n="$requests" 'BEGIN { print (n > 0) ? d / t * 1e6 / n : 0 }')
    errors=$(awk '/Non-2xx|Socket errors/ { s = s $0 "; " } END { print s }' <<<"$out")
    RPS[$row]+="$rps "; P50[$row]+="$p50 "; P99[$row]+="$p99 "; CPU[$row]+="$cpu "
    [ -n "$errors" ] && ERRORS[$row]+="round $round: $errors"
    now_rps[$row]=$rps; now_p99[$row]=$p99; now_cpu[$row]=$cpu
  done
  for row in "${rows[@]}"; do
    R_RPS[$row]+="$(ratio "${now_rps[$row]}" "${now_rps[haproxy]}") "
    R_P99[$row]+="$(ratio "${now_p99[$row]}" "${now_p99[haproxy]}") "
    R_CPU[$row]+="$(ratio "${now_cpu[$row]}" "${now_cpu[haproxy]}") "
  done
done

direct_rps=$(median "${RPS[direct]}")
echo "90/10 split, wrk -t1 -c$CONNECTIONS -d$DURATION, $ROUNDS round(s), medians; one worker per proxy; x/haproxy paired per round"
printf '%-8s %10s %8s %8s %11s %8s %10s %10s %10s\n' row req/s p50_us p99_us cpu_us/req x/direct rps/haproxy p99/haproxy cpu/haproxy
for row in "${rows[@]}"; do
  rps=$(median "${RPS[$row]}")
  printf '%-8s %10.0f %8.0f %8.0f %11.2f %8.2f %10.2f %10.2f %10.2f\n' "$row" "$rps" \
    "$(median "${P50[$row]}")" "$(median "${P99[$row]}")" "$(median "${CPU[$row]}")" \
    "$(ratio "$rps" "$direct_rps")" "$(median "${R_RPS[$row]}")" "$(median "${R_P99[$row]}")" \
    "$(median "${R_CPU[$row]}")"
  if [ -n "${ERRORS[$row]:-}" ]; then echo "  $row errors: ${ERRORS[$row]}"; fi
done
