#!/usr/bin/env bash
# The disaster-recovery drill (issue 23), on each backend: a node with a generated year — a
# sample network of ZORGAANBIEDERS, every list re-published daily, 1 % of the Zorgaanbieders
# changed weekly through the mutation workflow (≈ 5 000 mutations with their audit records),
# a nightly bundle per day (examples/drill_year.rs) — serves its lists; a consumer fetches and
# verifies them (`verify --state`); a change is approved after the last bundle; then the
# database is destroyed. It is restored from the bundles plus the consumer's copies of the
# newest versions (--serve-recovered: they are the newest any consumer holds), the node is
# started, and the drill checks: every list served byte-identical (same ETag) as before, the
# next approval publishing the next Volgnummer after the margin, the consumer's `verify
# --state` accepting it, and mutations and audit records complete up to the last bundle.
#
#   benches/restore-drill.sh [ZORGAANBIEDERS=10000] [WEEKS=52]
#
# Targets: restore of the year ≤ 60 s; from an empty database to /readyz 200 ≤ 2 minutes;
# the restore's peak memory ≤ 2× the largest version. BACKENDS ("sqlite postgres") chooses
# backends; RESULTS=file appends the figures for benches/report.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}; weeks=${2:-52}
if [ -z "${NODE_BIN:-}" ]; then
    cargo build --release --quiet --bin stelselnode --example drill_year
fi
bin=${NODE_BIN:-$PWD/target/release/stelselnode}
year=${YEAR_BIN:-$PWD/target/release/examples/drill_year}
work=$(mktemp -d /tmp/stelselnode-drill.XXXXXX)
. benches/node-bench.sh
now_ms() { date +%s%3N; }

make_dev_pki
config=(--config "$work/dev/config.toml")
node_curl=(curl -fsS --cacert dev/ca.pem --cert dev/node.pem --key dev/node.key)
staff() { "$bin" mutation --ca dev/ca.pem --cert "dev/$1.pem" --key "dev/$1.key" "${@:2}"; }

psql_() { (cd / && runuser -u postgres -- "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -At "$@"); }

# SQL over the backend's database (instants: microseconds in SQLite, timestamptz in PostgreSQL).
query() {
    case $backend in
        sqlite) python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])" "$db_file" "$1" ;;
        postgres) psql_ -d "$db_name" -c "$1" ;;
    esac
}
before_midnight() { # the condition "column before the newest bundle's end"
    case $backend in
        sqlite) echo "$1 < $(( midnight * 1000000 ))" ;;
        postgres) echo "$1 < to_timestamp($midnight)" ;;
    esac
}
counts() {
    echo "$(query "SELECT COUNT(*) FROM mutations WHERE $(before_midnight submitted_at)") mutations," \
         "$(query "SELECT COUNT(*) FROM audit_log WHERE $(before_midnight at)") audit records"
}

# A consumer fetches every list and keeps what it verified: the bytes, the signature, the ETag.
fetch_all() { # $1: directory
    mkdir -p "$1"
    for list in whitelist gnl ocl zal; do
        "${node_curl[@]}" -D "$1/$list.headers" -o "$1/$list.xml" "https://localhost:8443/lists/$list"
        local v; v=$(grep -o '<Volgnummer>[0-9]*</Volgnummer>' "$1/$list.xml" | head -1 | tr -dc 0-9)
        "${node_curl[@]}" -o "$1/$list.xml.sig" "https://localhost:8443/lists/$list/versions/$v/signature"
        echo "$v" > "$1/$list.volgnummer"
        grep -i '^etag:' "$1/$list.headers" | tr -d '\r' | cut -d' ' -f2 > "$1/$list.etag"
    done
}
# Waits until the served Whitelist names host $1.
served_has() {
    local body
    for _ in $(seq 1 100); do
        body=$("${node_curl[@]}" https://localhost:8443/lists/whitelist) && [[ $body == *"$1"* ]] && return 0
        sleep 0.1
    done
    echo "FAILED: the Whitelist does not name $1" >&2; exit 1
}
consumer_verify() { # $1: directory, $2: list
    "$bin" verify --list-file "$1/$2.xml" --signature "$1/$2.xml.sig" --ca dev/ca.pem --state consumer.json >/dev/null
}

for backend in ${BACKENDS:-sqlite postgres}; do
    rm -rf archive before after consumer.json
    case $backend in
        sqlite) db_file="$work/sqlite.db"; rm -f "$db_file"*; url="sqlite://$db_file" ;;
        postgres) start_postgres 55498; db_name=drill
            psql_ -d postgres -c "DROP DATABASE IF EXISTS drill" -c "CREATE DATABASE drill" >/dev/null 2>&1
            url="postgres://postgres@127.0.0.1:55498/drill" ;;
    esac
    export STELSELNODE_DATABASE_URL=$url STELSELNODE_LOG=warn
    generated=$(now_ms)
    STELSELNODE_LOG=error "$year" "$work/dev/config.toml" archive "$n" "$weeks"
    echo "$backend: the year generated in $(( ($(now_ms) - generated) / 1000 )) s"
    midnight=$(python3 -c 'from datetime import datetime; from zoneinfo import ZoneInfo
z = ZoneInfo("Europe/Amsterdam"); print(int(datetime.now(z).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()))')
    largest=$(query "SELECT MAX(size_bytes) FROM versions")
    versions=$(query "SELECT COUNT(*) FROM versions")

    "$bin" "${config[@]}" serve & pid=$!
    wait_ready 120
    # After the last bundle: a Whitelist change approved and published (only consumers keep it).
    printf '{"list":"whitelist","operation":"upsert","base_version":0,"entry":{"hostname":"drill.example.com"},"on_behalf_of":"Drill","reference":"DRILL-AFTER"}' > after.json
    id=$(staff loket submit after.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    staff beheer approve "$id" >/dev/null
    served_has drill.example.com
    fetch_all before
    for list in whitelist gnl ocl zal; do consumer_verify before "$list"; done
    counted=$(counts)
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

    # The database is destroyed; an empty one takes its place.
    case $backend in
        sqlite) rm -f "$db_file" "$db_file-wal" "$db_file-shm" ;;
        postgres) psql_ -d postgres -c "DROP DATABASE drill WITH (FORCE)" -c "CREATE DATABASE drill" >/dev/null ;;
    esac
    copies=(); for list in whitelist gnl ocl zal; do copies+=(--copy "before/$list.xml"); done
    restore_started=$(now_ms)
    /usr/bin/time -f "%e %M" -o restore.time "$bin" "${config[@]}" archive restore archive/* \
        --ca dev/ca.pem "${copies[@]}" --serve-recovered > restore.out
    restored=$(now_ms)
    "$bin" "${config[@]}" serve & pid=$!
    wait_ready 120
    ready=$(now_ms)

    fetch_all after
    same=0
    for list in whitelist gnl ocl zal; do
        if cmp -s before/$list.etag after/$list.etag && cmp -s before/$list.xml after/$list.xml; then
            same=$((same + 1))
        else
            echo "$list: served $(cat after/$list.etag), before $(cat before/$list.etag)" >&2
        fi
    done
    [ "$same" -eq 4 ] || { echo "FAILED: not every list is served as before" >&2; exit 1; }
    recounted=$(counts)
    [ "$counted" = "$recounted" ] || { echo "FAILED: before the last bundle $counted, restored $recounted" >&2; exit 1; }
    # The next approval publishes the next Volgnummer, and the consumer accepts it.
    printf '{"list":"whitelist","operation":"upsert","base_version":0,"entry":{"hostname":"drill2.example.com"},"on_behalf_of":"Drill","reference":"DRILL-NEXT"}' > next.json
    id=$(staff loket submit next.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    staff beheer approve "$id" >/dev/null
    served_has drill2.example.com
    # The change published after the last bundle came back with the consumer's copy, into
    # the working state: the next version keeps it.
    served_has drill.example.com
    mkdir -p next; fetch_all next
    consumer_verify next whitelist
    expected=$(( $(cat before/whitelist.volgnummer) + 1000 + 1 ))
    [ "$(cat next/whitelist.volgnummer)" = "$expected" ] || { echo "FAILED: published $(cat next/whitelist.volgnummer), expected $expected" >&2; exit 1; }
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

    read -r restore_s restore_kib < restore.time
    echo "$backend: $versions versions (largest $largest bytes), $counted before the last bundle"
    grep -E '^(restored|mutations|nothing)' restore.out | sed "s/^/$backend:   /"
    echo "$backend: restore ${restore_s} s (peak RSS $restore_kib KiB = $(python3 -c "print(f'{$restore_kib*1024/$largest:.2f}')")× the largest version); empty database → /readyz 200 $(( (ready - restore_started) )) ms (node start $(( ready - restored )) ms)"
    echo "$backend: every list served with the same ETag as before; next Whitelist Volgnummer $(cat next/whitelist.volgnummer) (before: $(cat before/whitelist.volgnummer)), accepted by verify --state"
    if [ -n "${RESULTS:-}" ]; then
        printf 'restore\t%s\t%s\t%s\t%s\t%s\n' "$backend" "$restore_s" "$restore_kib" "$largest" "$(( ready - restore_started ))" >> "$RESULTS"
    fi
done
