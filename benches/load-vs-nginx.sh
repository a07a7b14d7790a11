#!/usr/bin/env bash
# Serving the current ZAL over mutual TLS: the stelselnode beside nginx serving the same bytes
# from a file, with the same certificates, protocol versions, cipher suites and client
# certificate requirement, measured side by side in one run (SPEC §12: node ≥ 90 % of nginx).
#
#   benches/load-vs-nginx.sh [ZORGAANBIEDERS=10000] [SECONDS=10] [CONNECTIONS=16]
#
# Cases: full body identity, full body gzip, 304 (If-None-Match). Load comes from
# examples/loadgen.rs (keep-alive, one request in flight per connection), because wrk and
# h2load cannot present a client certificate. Everything runs on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}; seconds=${2:-10}; connections=${3:-16}
command -v nginx >/dev/null || { apt-get update -qq; apt-get install -y -qq nginx-light >/dev/null; }
command -v openssl >/dev/null || { apt-get update -qq; apt-get install -y -qq openssl >/dev/null; }
cargo build --release --quiet --bin stelselnode --example loadgen
bin=$PWD/target/release/stelselnode
loadgen=$PWD/target/release/examples/loadgen
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
"$bin" serve 2>node.log & node_pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:19100/readyz >/dev/null && break; sleep 0.2; done
curl -sf http://127.0.0.1:19100/readyz >/dev/null || { curl -s http://127.0.0.1:19100/readyz; cat node.log; exit 1; }

# nginx serves the very bytes the node serves (identity and its pre-compressed gzip).
mkdir -p nginx/www/lists nginx/logs
tls=(--cacert ca.pem --cert node.pem --key node.key)
curl -sf "${tls[@]}" https://localhost:18443/lists/zal -o nginx/www/lists/zal
curl -sf "${tls[@]}" -H 'Accept-Encoding: gzip' https://localhost:18443/lists/zal -o nginx/www/lists/zal.gz
etag=$(curl -sf -D - -o /dev/null "${tls[@]}" https://localhost:18443/lists/zal | tr -d '\r' | awk -F': ' 'tolower($1)=="etag" {print $2}')
cat > nginx/nginx.conf <<NGINX
worker_processes $(nproc);
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
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

run() { # label port headers...
    local port=$2; shift 2
    "$loadgen" "127.0.0.1:$port" /lists/zal ca.pem node.pem node.key "$connections" "$seconds" "$@"
}
cp nginx/nginx.conf /tmp/last-nginx.conf
printf '\n%s-Zorgaanbieder ZAL (%s bytes, gzip %s bytes), %s connections, %s s per run, %s cores\n\n' \
    "$n" "$(stat -c %s nginx/www/lists/zal)" "$(stat -c %s nginx/www/lists/zal.gz)" "$connections" "$seconds" "$(nproc)"
# Rounds alternate node and nginx so that both meet the same machine noise; the medians
# and their ratio are the figures.
rounds=${ROUNDS:-3}
for case in ${CASES:-identity gzip 304}; do
    case $case in
        identity) headers=() ;;
        gzip) headers=("Accept-Encoding: gzip") ;;
        304) headers=("If-None-Match: $etag") ;;
    esac
    node_runs=(); nginx_runs=()
    for _ in $(seq "$rounds"); do
        node=$(run node 18443 "${headers[@]}"); nginx=$(run nginx 28443 "${headers[@]}")
        echo "  $case node  $node" >&2; echo "  $case nginx $nginx" >&2
        node_runs+=("${node%% *}"); nginx_runs+=("${nginx%% *}")
    done
    python3 - "$case" "${node_runs[*]}" "${nginx_runs[*]}" <<'PY'
import statistics, sys
case, node, nginx = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
n, g = statistics.median(node), statistics.median(nginx)
print(f"{case:9} node {n:9.0f} req/s   nginx {g:9.0f} req/s   ratio {n / g:.2f}   (medians of {len(node)} runs)")
PY
done
