#!/usr/bin/env bash
# Serving the current ZAL over mutual TLS: the stelselnode beside nginx serving the same bytes
# from a file, with the same certificates, protocol versions, cipher suites and client
# certificate requirement, measured side by side in one run (issue 12: node ≥ nginx).
#
#   benches/load-vs-nginx.sh [ZORGAANBIEDERS=10000] [SECONDS=5] ["CONNECTIONS..."="16 64 256"]
#
# Cases: full body identity, full body gzip, 304 (If-None-Match), and (CASES=tile) the
# transparency log's first full tile of entries beside nginx serving it as a static file, each at every connection
# count; and `idle` (CASES=idle): the latency of a whitelisted node's requests (each on a new
# connection) while IDLE (5000) connections send nothing and STALLED (500) stall in their
# ClientHello, on each server in turn (examples/idle_flood.rs, issue 21). LOGS=on (or the
# older NGINX_LOG=on) gives both servers their production access log: nginx's buffered one,
# the node's (one line per request, written by its log thread) into a file. Two load generators measure every case: examples/loadgen.rs (counts only whole
# answers with the expected status and length that arrive within the run) and oha
# (crates.io; counted the same way from its status distribution) as a second opinion. ROUNDS
# (5) rounds alternate node and nginx so both meet the same machine noise; the figure is the
# median of the rounds' ratios, printed with their spread. Everything runs on loopback.
# RESULTS=file also writes one tab-separated line per case for benches/report.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}; seconds=${2:-5}; connection_counts=${3:-16 64 256}
command -v nginx >/dev/null || { apt-get update -qq; apt-get install -y -qq nginx-light >/dev/null; }
command -v openssl >/dev/null || { apt-get update -qq; apt-get install -y -qq openssl >/dev/null; }
command -v oha >/dev/null || [ "${CASES:-}" = idle ] || cargo install --quiet --locked oha
cargo build --release --quiet --bin stelselnode --example loadgen --example idle_flood
bin=$PWD/target/release/stelselnode
loadgen=$PWD/target/release/examples/loadgen
idle_flood=$PWD/target/release/examples/idle_flood
work=$(mktemp -d /tmp/stelselnode-load.XXXXXX)
node_pid=; nginx_started=
cleanup() {
    [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
    [ -n "$nginx_started" ] && nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -s stop 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# One PKI for both servers: CA, server certificate for localhost, a whitelisted node client.
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=load CA" -days 30 \
    -keyout ca.key -out ca.pem 2>/dev/null
issue() { # name subject extensions
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -out "$1.pem" \
        -extfile <(printf '%s\n' "$3") 2>/dev/null
}
issue server "/CN=localhost" "subjectAltName=DNS:localhost
extendedKeyUsage=serverAuth"
issue node "/CN=pgo0.example.com" "subjectAltName=DNS:pgo0.example.com
extendedKeyUsage=clientAuth"
issue signer "/CN=load signer" "extendedKeyUsage=codeSigning"

export STELSELNODE_LOG=warn STELSELNODE_DATABASE_URL="sqlite://$work/node.db" \
    STELSELNODE_SIGNING_KEY_FILE=$work/signer.key STELSELNODE_SIGNING_CERTIFICATE_CHAIN_FILE=$work/signer.pem \
    STELSELNODE_SERVER_CERTIFICATE_CHAIN_FILE=$work/server.pem STELSELNODE_SERVER_KEY_FILE=$work/server.key \
    STELSELNODE_SERVER_CLIENT_CA_FILE=$work/ca.pem \
    STELSELNODE_SERVER_NODE_LISTEN=127.0.0.1:18443 STELSELNODE_SERVER_ADMIN_LISTEN=127.0.0.1:19443 \
    STELSELNODE_SERVER_OPS_LISTEN=127.0.0.1:19100
"$bin" sample --zorgaanbieders "$n" --dir lists 2>/dev/null
for list in whitelist gnl ocl zal; do
    case $list in
        zal) file=MedMij_Zorgaanbiederslijst.xml ;; ocl) file=MedMij_OAuthclientlist.xml ;;
        gnl) file=MedMij_Gegevensdienstnamenlijst.xml ;; whitelist) file=MedMij_Whitelist.xml ;;
    esac
    "$bin" import --list $list "lists/$file" 2>/dev/null
done
"$bin" publish --all 2>/dev/null
# CASES=tile: the transparency log's first full tile of entries (issue 26: tiles at nginx's
# speed for static files of the same size) needs 256 versions; heartbeats of the small GNL.
tile=/log/tile/entries/000
if [[ " ${CASES:-} " == *" tile "* ]]; then
    for _ in $(seq 256); do "$bin" publish --list gnl >/dev/null 2>&1; done
fi
case ${LOGS:-${NGINX_LOG:-off}} in
    on) logs=on; node_log=warn,stelselnode::access=info ;;
    *) logs=off; node_log=warn ;;
esac
export LOGS_LABEL=$logs
STELSELNODE_LOG=$node_log "$bin" serve 2>node.log & node_pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:19100/readyz >/dev/null && break; sleep 0.2; done
curl -sf http://127.0.0.1:19100/readyz >/dev/null || { curl -s http://127.0.0.1:19100/readyz; cat node.log; exit 1; }

# nginx serves the very bytes the node serves (identity and its pre-compressed gzip).
mkdir -p nginx/www/lists nginx/logs
tls=(--cacert ca.pem --cert node.pem --key node.key)
curl -sf "${tls[@]}" https://localhost:18443/lists/zal -o nginx/www/lists/zal
mkdir -p "nginx/www$(dirname $tile)"
curl -sf "${tls[@]}" "https://localhost:18443$tile" -o "nginx/www$tile" || true
# The best gzip is made shortly after the version is first served, before zstd (issue 25):
# wait for zstd, so both servers send the same gzip bytes.
for _ in $(seq 300); do
    curl -sf -D - -o /dev/null "${tls[@]}" -H 'Accept-Encoding: zstd' https://localhost:18443/lists/zal \
        | grep -qi '^content-encoding: zstd' && break
    sleep 0.2
done
curl -sf "${tls[@]}" -H 'Accept-Encoding: gzip' https://localhost:18443/lists/zal -o nginx/www/lists/zal.gz
etag=$(curl -sf -D - -o /dev/null "${tls[@]}" https://localhost:18443/lists/zal | tr -d '\r' | awk -F': ' 'tolower($1)=="etag" {print $2}')
# LOGS=on gives nginx the access log it has in production (buffered, as nginx is run); off
# (the default, kept for the earlier series) measures both servers without one.
case $logs in
    on) nginx_access_log="access_log $work/nginx/logs/access.log combined buffer=64k flush=1s;" ;;
    *) nginx_access_log="access_log off;" ;;
esac
cat > nginx/nginx.conf <<NGINX
worker_processes $(nproc);
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
worker_rlimit_nofile 40000;
events { worker_connections 16384; }
http {
    $nginx_access_log
    sendfile on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    types { application/xml xml; }
    server {
        listen 127.0.0.1:28443 ssl;
        ssl_certificate $work/server.pem;
        ssl_certificate_key $work/server.key;
        ssl_client_certificate $work/ca.pem;
        ssl_verify_client on;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256;
        ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256;
        ssl_ecdh_curve X25519:prime256v1:secp384r1;
        root $work/nginx/www;
        location /log/tile/ {
            default_type application/octet-stream;
            add_header Cache-Control "public, max-age=31536000, immutable";
        }
        location = /lists/zal {
            default_type application/xml;
            gzip_static on;
            etag off;
            add_header ETag '$etag';
            if (\$http_if_none_match = '$etag') { return 304; }
        }
    }
}
NGINX
# nginx workers run unprivileged: they need to reach the files they serve.
chmod a+x "$work" && chmod -R a+rX nginx/www
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" && nginx_started=1
for _ in $(seq 50); do curl -sf "${tls[@]}" https://localhost:28443/lists/zal -o /dev/null && break; sleep 0.2; done
cmp <(curl -sf "${tls[@]}" https://localhost:28443/lists/zal) nginx/www/lists/zal

identity_bytes=$(stat -c %s nginx/www/lists/zal); gzip_bytes=$(stat -c %s nginx/www/lists/zal.gz)
tile_bytes=$(stat -c %s "nginx/www$tile" 2>/dev/null || echo 0)
cp nginx/nginx.conf /tmp/last-nginx.conf
printf '\n%s-Zorgaanbieder ZAL (%s bytes, gzip %s bytes; log tile %s bytes), %s s per run, %s rounds, %s cores\n\n' \
    "$n" "$identity_bytes" "$gzip_bytes" "$tile_bytes" "$seconds" "${ROUNDS:-5}" "$(nproc)"

# A run lasts at least SECONDS and long enough for every connection to receive some three
# whole answers at loopback speed (~1.5 GB/s here): 256 connections of the 43 MB identity
# document take half a minute, and a shorter run would count next to nothing.
run_seconds() { # connections length
    python3 -c "import math, sys; c, n, s = map(int, sys.argv[1:]); print(max(s, math.ceil(3 * c * n / 1.5e9)))" \
        "$1" "$2" "$seconds"
}
loadgen_run() { # port connections status length headers...
    local port=$1 connections=$2 status=$3 length=$4; shift 4
    "$loadgen" "127.0.0.1:$port" "$path" ca.pem node.pem node.key "$connections" \
        "$(run_seconds "$connections" "$length")" "$status" "$length" "$@"
}
oha_run() { # port connections status length headers...
    local port=$1 connections=$2 status=$3 length=$4; shift 4
    local args=()
    for header in "$@"; do args+=(-H "$header"); done
    local run; run=$(run_seconds "$connections" "$length")
    oha -z "${run}s" -c "$connections" --no-tui --output-format json --disable-compression \
        --cacert ca.pem --cert node.pem --key node.key "${args[@]}" \
        "https://localhost:$port$path" \
    | python3 -c '
import json, sys
status, length, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
d = json.load(sys.stdin)
codes = d.get("statusCodeDistribution") or {}
good = codes.get(status, 0)
wrong = sum(n for code, n in codes.items() if code != status)
failed = sum(n for kind, n in (d.get("errorDistribution") or {}).items() if kind != "aborted due to deadline")
size = d["summary"].get("sizePerRequest") or 0
if good and abs(size - length) > 0.5:
    wrong += good  # bodies of another size: none of them counts
    good = 0
p = d.get("latencyPercentiles") or {}
p50, p99 = (p.get("p50") or 0) * 1e3, (p.get("p99") or 0) * 1e3
kinds = d.get("errorDistribution")
example = "" if not (wrong or failed) else f"; statuses {codes}, errors {kinds}, {size:.0f} bytes per answer"
print(f"{good / seconds:.0f} req/s  p50 {p50:.2f} ms  p99 {p99:.2f} ms  ({good} good answers; errors {wrong + failed}{example})")
' "$status" "$length" "$run"
}

# CPU spent per answer (issue 25: is a ratio the server's or the machine's?): the server's
# processes (the node; nginx's master and workers) and the whole machine, from clock ticks.
server_ticks() { # port
    local pids=$node_pid
    [ "$1" = 28443 ] && pids="$(cat nginx/nginx.pid) $(pgrep -P "$(cat nginx/nginx.pid)" | tr '\n' ' ')"
    for pid in $pids; do awk '{print $14 + $15}' "/proc/$pid/stat"; done | awk '{s += $1} END {print s}'
}
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
cpu_per_answer() { # ticks answers → microseconds
    python3 -c "import os, sys; t, n = map(int, sys.argv[1:]); print(f'{t * 1e6 / os.sysconf(\"SC_CLK_TCK\") / max(n, 1):.1f}')" "$1" "$2"
}

rounds=${ROUNDS:-5}
for case in ${CASES:-304 gzip identity}; do
    if [ "$case" = idle ]; then
        for round in $(seq "$rounds"); do
            for port in 18443 28443; do
                label=node; [ "$port" = 28443 ] && label=nginx
                result=$("$idle_flood" "127.0.0.1:$port" /lists/zal ca.pem node.pem node.key \
                    "${IDLE:-5000}" "${STALLED:-500}" "${REQUESTS:-20}")
                echo "idle     round $round $label (${IDLE:-5000} idle, ${STALLED:-500} stalled): $result"
                if [ -n "${RESULTS:-}" ]; then
                    printf 'idle\t%s\t%s\t%s\n' "$round" "$label" "$result" >> "$RESULTS"
                fi
            done
        done
        continue
    fi
    path=/lists/zal
    case $case in
        identity) headers=(); status=200; length=$identity_bytes ;;
        gzip) headers=("Accept-Encoding: gzip"); status=200; length=$gzip_bytes ;;
        304) headers=("If-None-Match: $etag"); status=304; length=0 ;;
        tile) headers=(); status=200; length=$tile_bytes; path=$tile
              [ "$tile_bytes" -gt 0 ] || { echo "the node serves no $tile" >&2; exit 1; } ;;
    esac
    for connections in $connection_counts; do
        for tool in loadgen oha; do
            node_runs=(); nginx_runs=()
            for round in $(seq "$rounds"); do
                # Alternate which server goes first, so neither always meets a warmer machine.
                if [ $((round % 2)) = 1 ]; then order="18443 28443"; else order="28443 18443"; fi
                for port in $order; do
                    server_before=$(server_ticks "$port"); machine_before=$(machine_ticks)
                    result=$("${tool}_run" "$port" "$connections" "$status" "$length" "${headers[@]}")
                    answers=$(sed -n 's/.*(\([0-9]*\) good answers.*/\1/p' <<<"$result")
                    result="$result; CPU per answer: server $(cpu_per_answer $(( $(server_ticks "$port") - server_before )) "$answers") µs, machine $(cpu_per_answer $(( $(machine_ticks) - machine_before )) "$answers") µs"
                    label=node; [ "$port" = 28443 ] && label=nginx
                    echo "  $case c=$connections $tool $label: $result" >&2
                    case $result in *"errors 0"*) ;; *) echo "errors in $case c=$connections $tool $label: $result" >&2; exit 1 ;; esac
                    if [ "$label" = node ]; then node_runs+=("${result%% *}"); else nginx_runs+=("${result%% *}"); fi
                done
            done
            python3 - "$case" "$connections" "$tool" "${node_runs[*]}" "${nginx_runs[*]}" <<'PY'
import os, statistics, sys
case, connections, tool = sys.argv[1:4]
node = [float(x) for x in sys.argv[4].split()]
nginx = [float(x) for x in sys.argv[5].split()]
ratios = sorted(n / g if g else float("nan") for n, g in zip(node, nginx))
ratio = statistics.median(ratios)
print(f"{case:8} c={connections:<4} {tool:7} node {statistics.median(node):8.0f} req/s  nginx {statistics.median(nginx):8.0f} req/s"
      f"  ratio {ratio:.2f} (rounds {ratios[0]:.2f}-{ratios[-1]:.2f})")
if os.environ.get("RESULTS"):
    with open(os.environ["RESULTS"], "a") as out:
        out.write(f"serve\t{case}\t{connections}\t{tool}\t{ratio:.3f}\t{ratios[0]:.3f}\t{ratios[-1]:.3f}"
                  f"\t{statistics.median(node):.0f}\t{statistics.median(nginx):.0f}\t{os.environ['LOGS_LABEL']}\n")
PY
        done
    done
done
