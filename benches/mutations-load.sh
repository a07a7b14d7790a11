#!/usr/bin/env bash
# The mutation workflow under a realistic load, on each backend: a release build, real mutual
# TLS, SQLite with durable commits (WAL, synchronous=FULL) and a throwaway PostgreSQL cluster
# with its default durability (fsync on).
#
#   benches/mutations-load.sh [ZORGAANBIEDERS=10000] [SECONDS=60] [RATE=500] [CONNECTIONS=16] [ROUNDS=5]
#
# For each backend the node starts on a freshly imported and published sample network and the
# load starts the moment it is ready (examples/mutation_load.rs: the mix, approvals during it,
# the first minute's maximum separately, then approval → served). Then approval → served right
# after a CLI import of the ZAL (ROUNDS times), and while oha holds SATURATE (256) connections
# on the ZAL's gzip answer. Targets: mix p99 ≤ 30 ms, no request > 200 ms in the first minute
# (issue 12); approval → served ≤ 150 ms, after an import ≤ 300 ms, saturated ≤ 1 s (issue 25).
# The node and the load generators share the machine's cores.
#
# BACKENDS ("sqlite postgres") chooses backends; NODE_BIN and LOAD_BIN run other builds (e.g.
# an earlier commit's, side by side); RESULTS=file appends the figures for benches/report.sh;
# PERF=file records the node with `perf record -g` while the load runs (for `perf report`);
# STELSELNODE_LOG (warn) sets the node's log: `warn,stelselnode::publication=info` logs each
# publication with where its time went (read_ms, prepare_ms, store_ms).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}; seconds=${2:-60}; rate=${3:-500}; connections=${4:-16}; rounds=${5:-5}
if [ -z "${NODE_BIN:-}" ]; then
    cargo build --release --quiet --bin stelselnode --example mutation_load
fi
bin=${NODE_BIN:-$PWD/target/release/stelselnode}
load=${LOAD_BIN:-$PWD/target/release/examples/mutation_load}
work=$(mktemp -d /tmp/stelselnode-mutations.XXXXXX)
. benches/node-bench.sh
make_dev_pki
"$bin" --config dev/config.toml sample --zorgaanbieders "$n" --dir sample 2>/dev/null

for backend in ${BACKENDS:-sqlite postgres}; do
    case $backend in
        sqlite) url="sqlite://$work/$backend.db" ;;
        postgres) start_postgres 55499; url="postgres://postgres@127.0.0.1:55499/postgres" ;;
    esac
    export STELSELNODE_DATABASE_URL=$url STELSELNODE_LOG=${STELSELNODE_LOG:-warn}
    config=(--config dev/config.toml)
    import_sample "${config[@]}"
    "$bin" "${config[@]}" serve & pid=$!
    wait_ready
    if [ -n "${PERF:-}" ]; then perf record -q -g -o "$PERF" -p "$pid" & perf_pid=$!; fi
    echo "$backend: release build, ZAL of $n Zorgaanbieders, $rate requests/s for $seconds s from $connections connections; $(nproc) cores"
    LABEL=$backend "$load" "$work/dev" 127.0.0.1:9443 127.0.0.1:8443 "$n" "$seconds" "$rate" "$connections" "$rounds"
    approvals() { # label rounds first-round: approval → served alone (no mix), its median in ms
        env -u RESULTS FIRST_ROUND="$3" LABEL="$1" "$load" "$work/dev" 127.0.0.1:9443 127.0.0.1:8443 "$n" 0 1 1 "$2" \
            | sed -n 's/^approval → served: median \([0-9]*\) ms.*/\1/p'
    }
    # The first approval after a CLI import: the node reads the list's working state again.
    cold=()
    for round in $(seq "$rounds"); do
        "$bin" "${config[@]}" import --list zal sample/MedMij_Zorgaanbiederslijst.xml >/dev/null
        cold+=("$(approvals "$backend" 1 $((rounds + round)))")
    done
    cold_median=$(printf '%s\n' "${cold[@]}" | sort -n | sed -n "$(( (rounds + 1) / 2 ))p")
    echo "first approval after a CLI import → served: median $cold_median ms (${cold[*]})"
    # Approvals while oha holds SATURATE connections on the ZAL's gzip answer (issue 25: the
    # publication must not starve behind the requests).
    oha -z 600s -c "${SATURATE:-256}" --no-tui --disable-compression -H "Accept-Encoding: gzip" \
        --cacert dev/ca.pem --cert dev/node.pem --key dev/node.key \
        https://localhost:8443/lists/zal >/dev/null 2>&1 & oha_pid=$!
    until [ "$(curl -fsS http://127.0.0.1:9100/metrics | awk '/^stelselnode_node_answers_total\{outcome="good"/ {s += $2} END {print s + 0}')" -gt 1000 ]; do
        sleep 0.2
    done
    saturated=$(approvals "$backend" "$rounds" $((3 * rounds)))
    kill -INT "$oha_pid"; wait "$oha_pid" 2>/dev/null || true
    echo "approval → served while oha holds ${SATURATE:-256} connections on gzip: median $saturated ms"
    if [ -n "${RESULTS:-}" ]; then
        printf 'served\t%s\tcold\t%s\nserved\t%s\tsaturated\t%s\n' "$backend" "$cold_median" "$backend" "$saturated" >>"$RESULTS"
    fi
    if [ -n "${PERF:-}" ]; then kill -INT $perf_pid; wait $perf_pid || true; fi
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
