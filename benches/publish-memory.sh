#!/usr/bin/env bash
# Import and publication of a large ZAL through the CLI, as an operator runs them: wall time
# and peak memory (issue 12: import of 10 000 Zorgaanbieders ≤ 0.8 s with peak memory ≤ 3× the
# document). Each of ROUNDS (5) rounds imports into a fresh SQLite file and publishes; the
# medians are the figures. Usage: benches/publish-memory.sh [ZORGAANBIEDERS] (10000)
# RESULTS=file appends them for benches/report.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}; rounds=${ROUNDS:-5}
[ -n "${NODE_BIN:-}" ] || cargo build --release --quiet --bin stelselnode
bin=${NODE_BIN:-$PWD/target/release/stelselnode}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export STELSELNODE_LOG=warn
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench -days 2 \
    -keyout "$work/signer.key" -out "$work/signer.pem" 2>/dev/null
export STELSELNODE_SIGNING_KEY_FILE="$work/signer.key" STELSELNODE_SIGNING_CERTIFICATE_CHAIN_FILE="$work/signer.pem"
"$bin" sample --zorgaanbieders "$n" --dir "$work/lists" 2>/dev/null
zal=$work/lists/MedMij_Zorgaanbiederslijst.xml
size=$(stat -c %s "$zal")
timed() { # label command... → "seconds kib"
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>&1
    cat "$work/time"
}
imports=(); import_kib=(); publishes=()
for round in $(seq "$rounds"); do
    export STELSELNODE_DATABASE_URL="sqlite://$work/node$round.db"
    for l in whitelist:Whitelist gnl:Gegevensdienstnamenlijst ocl:OAuthclientlist; do
        "$bin" import --list "${l%%:*}" "$work/lists/MedMij_${l#*:}.xml" >/dev/null 2>&1
    done
    read -r seconds kib < <(timed "$bin" import --list zal "$zal")
    imports+=("$seconds"); import_kib+=("$kib")
    read -r seconds _ < <(timed "$bin" publish --list zal)
    publishes+=("$seconds")
    echo "  round $round: import ${imports[-1]} s (peak ${import_kib[-1]} KiB), publish ${publishes[-1]} s" >&2
    rm -f "$work/node$round.db"*
done
python3 - "$n" "$size" "${imports[*]}" "${import_kib[*]}" "${publishes[*]}" <<'PY'
import os, statistics, sys
n, size = int(sys.argv[1]), int(sys.argv[2])
imports, kib, publishes = ([float(x) for x in a.split()] for a in sys.argv[3:6])
imp, peak, pub = statistics.median(imports), statistics.median(kib) * 1024 / size, statistics.median(publishes)
print(f"{n}-Zorgaanbieder ZAL ({size} bytes): import {imp:.2f} s (rounds {min(imports):.2f}-{max(imports):.2f}), "
      f"peak memory {peak:.2f}x the document; first publication through the CLI {pub:.2f} s (medians of {len(imports)})")
if os.environ.get("RESULTS"):
    with open(os.environ["RESULTS"], "a") as out:
        out.write(f"import\t{n}\t{imp:.3f}\t{peak:.3f}\t{pub:.3f}\n")
PY
