#!/usr/bin/env bash
# The mutation workflow under load (issue 5), on the embedded default: SQLite with durable
# commits (WAL, synchronous=FULL), a release build, real mutual TLS.
#
#   benches/mutations-load.sh [ZORGAANBIEDERS=10000] [SECONDS=10] [CONNECTIONS=16] [ROUNDS=5]
#
# 1. sustained submissions from CONNECTIONS keep-alive loket clients (target ≥ 300/s, p99 ≤ 50 ms);
# 2. approval → the new ZAL served by the node listener, with a ZORGAANBIEDERS-entry ZAL
#    (target ≤ 1 s). The node and the load generator share the machine's cores.
#
# NODE_BIN and LOAD_BIN run other builds (e.g. an earlier commit's, to
# compare side by side in one session) instead of building this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}; seconds=${2:-10}; connections=${3:-16}; rounds=${4:-5}
if [ -z "${NODE_BIN:-}" ]; then
    cargo build --release --quiet --bin stelselnode --example mutation_load
fi
bin=${NODE_BIN:-$PWD/target/release/stelselnode}
load=${LOAD_BIN:-$PWD/target/release/examples/mutation_load}
work=$(mktemp -d /tmp/stelselnode-mutations.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

wait_ready() {
    for _ in $(seq 1 300); do
        curl -fsS http://127.0.0.1:9100/readyz >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "the node did not become ready" >&2; exit 1
}

# The dev node makes the PKI and configuration; then a network of $n Zorgaanbieders replaces
# its example lists, published before the node serves again.
STELSELNODE_LOG=warn "$bin" dev --dir dev >/dev/null & pid=$!
wait_ready; kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
config=(--config dev/config.toml)
"$bin" "${config[@]}" sample --zorgaanbieders "$n" --dir sample 2>/dev/null
for list in Whitelist Gegevensdienstnamenlijst OAuthclientlist Zorgaanbiederslijst; do
    case $list in Whitelist) l=whitelist;; Gegevensdienstnamenlijst) l=gnl;; OAuthclientlist) l=ocl;; *) l=zal;; esac
    STELSELNODE_LOG=warn "$bin" "${config[@]}" import --list "$l" "sample/MedMij_$list.xml" >/dev/null
done
STELSELNODE_LOG=warn "$bin" "${config[@]}" publish --all --confirm-mass-change >/dev/null
STELSELNODE_LOG=warn "$bin" "${config[@]}" serve & pid=$!
wait_ready
echo "node: release build, SQLite (WAL, synchronous=FULL), ZAL of $n Zorgaanbieders; $(nproc) cores"
"$load" "$work/dev" 127.0.0.1:9443 127.0.0.1:8443 "$connections" "$seconds" "$rounds"
