#!/usr/bin/env bash
# Signing in a PKCS#11 token against a key file (issue 27): approval → served with a ZAL of
# ZORGAANBIEDERS, the dev signing key (RSA 2048) once read from its file and once imported into
# a SoftHSM2 token, on SQLite, release build, real mutual TLS. The two alternate ROUNDS times,
# each round a fresh start and APPROVALS approvals (examples/mutation_load.rs), so both see the
# same machine; the medians are printed side by side. Target: the token adds ≤ 20 ms.
#
#   benches/token-signing.sh [ZORGAANBIEDERS=10000] [ROUNDS=3] [APPROVALS=5]
#
# Needs softhsm2 and opensc (scripts/test installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}; rounds=${2:-3}; approvals=${3:-5}
cargo build --release --quiet --bin stelselnode --example mutation_load
bin=$PWD/target/release/stelselnode
load=$PWD/target/release/examples/mutation_load
module=/usr/lib/softhsm/libsofthsm2.so
work=$(mktemp -d /tmp/stelselnode-token.XXXXXX)
. benches/node-bench.sh
make_dev_pki
"$bin" --config dev/config.toml sample --zorgaanbieders "$n" --dir sample 2>/dev/null

# The same key in a token of its own.
export SOFTHSM2_CONF=$work/softhsm2.conf
mkdir -p "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" >"$SOFTHSM2_CONF"
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 5678 >/dev/null
pkcs11-tool --module "$module" --token-label bench --login --pin 1234 --write-object dev/signer.key \
    --type privkey --label signer --id 01 --usage-sign >/dev/null 2>&1
uri="pkcs11:token=bench;object=signer?module-path=$module&pin-value=1234"

export STELSELNODE_DATABASE_URL="sqlite://$work/bench.db" STELSELNODE_LOG=warn
config=(--config dev/config.toml)
import_sample "${config[@]}"

declare -A medians
first=1
for round in $(seq "$rounds"); do
    for key in file token; do
        case $key in
            file) unset STELSELNODE_SIGNING_KEY_FILE ;;
            token) export STELSELNODE_SIGNING_KEY_FILE=$uri ;;
        esac
        "$bin" "${config[@]}" serve & pid=$!
        wait_ready
        median=$(FIRST_ROUND=$first LABEL=$key "$load" "$work/dev" 127.0.0.1:9443 127.0.0.1:8443 "$n" 0 1 1 "$approvals" \
            | sed -n 's/^approval → served: median \([0-9]*\) ms.*/\1/p')
        first=$((first + approvals))
        kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
        medians[$key]+="$median "
        echo "round $round, key in a $key: approval → served median $median ms"
    done
done
median_of() { printf '%s\n' $1 | sort -n | sed -n "$(( ($(printf '%s\n' $1 | wc -l) + 1) / 2 ))p"; }
f=$(median_of "${medians[file]}"); t=$(median_of "${medians[token]}")
echo "approval → served, ZAL of $n, medians of $rounds rounds: key file $f ms, SoftHSM2 token $t ms, token − file $((t - f)) ms (target ≤ 20 ms)"
