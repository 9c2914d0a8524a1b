#!/usr/bin/env bash
# Rollback latency: the time from green starting to fail (the fail file touched) to HAProxy's
# weights reading 100/0 again (blue-1 > 0, green-1 = 0), as observed by THIS script polling
# HAProxy's runtime API every 10 ms over socat, not from the coordinator's own log.
#
# Per trial: a fresh journal, `switchover run blue green --policy bench` (steps 25 → 100, a long
# bake so the run sits at 25% to green), load from `hey` at a few hundred requests per second on
# 127.0.0.1, then the fault. The coordinator's hard signal (green's 5xx ratio over one 250 ms
# sample) rolls back. Prints a markdown table with the median and max.
#
# Usage: bench/rollback.sh [TRIALS (default 10)] [RATE per worker (default 50)] [WORKERS (default 6)]
# Needs: swift build (the switchover binary), haproxy, nginx, hey, socat, openssl (scripts/setup).
set -euo pipefail

TRIALS=${1:-10}
RATE=${2:-50}
WORKERS=${3:-6}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SWITCHOVER_BINARY:-$ROOT/.build/debug/switchover}
for tool in haproxy nginx hey socat openssl; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed: run scripts/setup" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "no switchover binary at $BIN: run swift build first" >&2; exit 2; }

WORK=$(mktemp -d /tmp/switchover-bench-rollback.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
[ -n "${BENCH_DEBUG:-}" ] && trap - EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

# --- nginx backends: 200, or 503 while their fail file exists ---
start_nginx() { # name port
    local dir=$WORK/nginx-$1
    mkdir -p "$dir"; chmod 755 "$dir"
    cat > "$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fcgi;
    uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$2;
        location / {
            if (-f $dir/fail) { return 503 "$1 failing\n"; }
            return 200 "$1\n";
        }
    }
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/stdout.log" 2>&1 &
    PIDS+=($!)
    wait_port "$2"
}
BLUE_PORT=$(free_port); GREEN_PORT=$(free_port); LB_PORT=$(free_port)
start_nginx blue-1 "$BLUE_PORT"
start_nginx green-1 "$GREEN_PORT"

# --- HAProxy: 0% to green to begin with ---
SOCK=$WORK/haproxy/admin.sock
mkdir -p "$WORK/haproxy"
cat > "$WORK/haproxy/haproxy.cfg" <<EOF
global
    stats socket $SOCK mode 600 level admin
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend traffic
    bind 127.0.0.1:$LB_PORT
    default_backend app
backend app
    balance roundrobin
    server blue-1 127.0.0.1:$BLUE_PORT weight 1
    server green-1 127.0.0.1:$GREEN_PORT weight 0
EOF
haproxy -f "$WORK/haproxy/haproxy.cfg" -db >"$WORK/haproxy/haproxy.log" 2>&1 &
PIDS+=($!)
wait_port "$LB_PORT"
while [ ! -S "$SOCK" ]; do sleep 0.05; done
weight() { echo "get weight app/$1" | socat stdio "UNIX-CONNECT:$SOCK" | awk '{print $1}'; }

# --- PKI: one shared root, an intermediate per cluster (trust holds both ways) ---
PKI=$WORK/pki; mkdir -p "$PKI"; cd "$PKI"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key -out root.pem -days 365 \
    -subj /CN=mesh-root -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
printf "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n" > ca.ext
for c in blue green; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $c.key -out $c.csr -subj /CN=$c-ca 2>/dev/null
    openssl x509 -req -in $c.csr -CA root.pem -CAkey root.key -CAcreateserial -days 365 -extfile ca.ext -out $c-chain.pem 2>/dev/null
done
cd "$ROOT"

# --- configuration ---
mkdir -p "$WORK/clusters" "$WORK/policies"
for c in blue green; do
    port=$BLUE_PORT; [ $c = green ] && port=$GREEN_PORT
    cat > "$WORK/clusters/$c.yaml" <<EOF
apiVersion: switchover.dev/v1alpha1
kind: Cluster
metadata:
  name: $c
spec:
  istio:
    version: "1.27.4"
  trust:
    trustDomain: cluster.local
    rootCerts: $PKI/root.pem
    certChain: $PKI/$c-chain.pem
  loadBalancer:
    servers: [$c-1]
  health: http://127.0.0.1:$port/healthz
EOF
done
cat > "$WORK/policies/bench.yaml" <<EOF
apiVersion: switchover.dev/v1alpha1
kind: Policy
metadata:
  name: bench
spec:
  loadBalancer:
    driver: haproxy
    haproxy:
      socket: $SOCK
      backend: app
  steps: [25, 100]
  bake: 10m
  interval: 1s
  sampling: 250ms
  failureThreshold: 2
  gates:
    - name: green-errors
      loadBalancer: {cluster: green, max5xxRatio: 0.05, minRequests: 10}
  rollback:
    automatic: true
    hardSignal: {max5xxRatio: 0.2, minRequests: 10}
EOF

now_ns() { date +%s%N; }
RESULTS=()
for trial in $(seq 1 "$TRIALS"); do
    rm -f "$WORK/nginx-green-1/fail" "$WORK/state.db"*
    hey -z 30s -q "$RATE" -c "$WORKERS" "http://127.0.0.1:$LB_PORT/" >"$WORK/hey-$trial.log" 2>&1 &
    HEY=$!; PIDS+=($HEY)
    "$BIN" run blue green --policy bench --clusters "$WORK/clusters" --policies "$WORK/policies" \
        --state "$WORK/state.db" >"$WORK/run-$trial.log" 2>&1 &
    RUN=$!; PIDS+=($RUN)
    # Wait for step 1 (25% to green) to be live, then let a few samples pass.
    for _ in $(seq 1 300); do [ "$(weight green-1)" != "0" ] && break; sleep 0.02; done
    [ "$(weight green-1)" != "0" ] || { echo "trial $trial: green never got traffic" >&2; cat "$WORK/run-$trial.log" >&2; exit 1; }
    sleep 1.5
    start=$(now_ns)
    touch "$WORK/nginx-green-1/fail"
    while :; do
        g=$(weight green-1); b=$(weight blue-1)
        if [ "$g" = "0" ] && [ "$b" != "0" ]; then break; fi
        [ $(( $(now_ns) - start )) -gt 10000000000 ] && { echo "trial $trial: no rollback within 10 s" >&2; cat "$WORK/run-$trial.log" >&2; exit 1; }
        sleep 0.01
    done
    end=$(now_ns)
    ms=$(( (end - start) / 1000000 ))
    RESULTS+=("$ms")
    rc=0; wait "$RUN" || rc=$?
    kill "$HEY" 2>/dev/null || true; wait "$HEY" 2>/dev/null || true
    echo "trial $trial: ${ms} ms (coordinator exit $rc)" >&2
done

SORTED=($(printf '%s\n' "${RESULTS[@]}" | sort -n))
N=${#SORTED[@]}
if (( N % 2 == 1 )); then MEDIAN=${SORTED[$((N / 2))]}; else MEDIAN=$(( (SORTED[N/2 - 1] + SORTED[N/2]) / 2 )); fi
MAX=${SORTED[$((N - 1))]}
MIN=${SORTED[0]}
echo
echo "| measure | value |"
echo "|---|---|"
echo "| trials | $N |"
echo "| load | $((RATE * WORKERS)) req/s (hey -q $RATE -c $WORKERS), 25% to green |"
echo "| fault → HAProxy 100/0, median | ${MEDIAN} ms |"
echo "| fault → HAProxy 100/0, min | ${MIN} ms |"
echo "| fault → HAProxy 100/0, max | ${MAX} ms |"
echo "| all trials (ms) | ${RESULTS[*]} |"
