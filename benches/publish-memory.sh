#!/usr/bin/env bash
# Peak memory and wall time of one publication of a large ZAL (SPEC §12: peak memory at most
# 3x the document size): imports a sample network into a fresh SQLite file, then publishes
# the ZAL under /usr/bin/time -v. Usage: benches/publish-memory.sh [ZORGAANBIEDERS] (10000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
cargo build --release --quiet
bin=$PWD/target/release/stelselnode
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export STELSELNODE_DATABASE_URL="sqlite://$work/node.db" STELSELNODE_LOG=warn
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench -days 2 \
    -keyout "$work/signer.key" -out "$work/signer.pem" 2>/dev/null
export STELSELNODE_SIGNING_KEY_FILE="$work/signer.key" STELSELNODE_SIGNING_CERTIFICATE_CHAIN_FILE="$work/signer.pem"
"$bin" sample --zorgaanbieders "$n" --dir "$work/lists" 2>/dev/null
"$bin" import --list whitelist "$work/lists/MedMij_Whitelist.xml" 2>/dev/null
"$bin" import --list gnl "$work/lists/MedMij_Gegevensdienstnamenlijst.xml" 2>/dev/null
"$bin" import --list ocl "$work/lists/MedMij_OAuthclientlist.xml" 2>/dev/null
/usr/bin/time -f "import of the $n-Zorgaanbieder ZAL: %e s wall, peak RSS %M KiB" \
    "$bin" import --list zal "$work/lists/MedMij_Zorgaanbiederslijst.xml" 2>&1 | grep -v '^imported'
size=$(stat -c %s "$work/lists/MedMij_Zorgaanbiederslijst.xml")
/usr/bin/time -f "publish of the $n-Zorgaanbieder ZAL: %e s wall, peak RSS %M KiB" \
    "$bin" publish --list zal 2>&1 | grep -v '^published'
echo "ZAL document: $size bytes ($((size / 1024)) KiB)"
"$bin" publish --list zal 2>/dev/null  # a heartbeat: same entries, new header
python3 - "$work/node.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
body = db.execute("SELECT sum(length(compressed)), count(*) FROM version_bodies").fetchone()
rows = db.execute("SELECT volgnummer, length(header), length(signature), size_bytes FROM versions WHERE list = 'zal' ORDER BY volgnummer").fetchall()
print(f"archive: {body[1]} stored body, {body[0]} bytes gzip, for {len(rows)} versions")
for n, header, signature, size in rows:
    print(f"  version {n}: {size} bytes published; own storage {header} header + {signature} signature bytes")
PY
echo "database after two versions: $(du -k "$work/node.db" "$work"/node.db-wal 2>/dev/null | awk '{s+=$1} END {print s}') KiB (working state + archive)"
