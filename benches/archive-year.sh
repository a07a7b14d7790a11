#!/usr/bin/env bash
# The archive over a year (issue 14): a 10 000-Zorgaanbieder ZAL published weekly with 1 % of
# its entries changed (52 versions) and re-published daily in between (heartbeats: 6 a week),
# then one bundle of it all exported and verified offline, each under /usr/bin/time.
# Targets: export and verify each ≤ 30 s, peak memory ≤ 2× the largest single version.
#
#   benches/archive-year.sh [ZORGAANBIEDERS=10000] [WEEKS=52]
#
# The year is published in compressed time (the node's clock is real); what the archive
# handles — versions, shared bodies, bytes — is the year's. NODE_BIN runs another build.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}; weeks=${2:-52}
[ -n "${NODE_BIN:-}" ] || cargo build --release --quiet --bin stelselnode
bin=${NODE_BIN:-$PWD/target/release/stelselnode}
work=$(mktemp -d /tmp/stelselnode-archive.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
export STELSELNODE_DATABASE_URL="sqlite://$work/node.db" STELSELNODE_LOG=warn

# A CA and a signing certificate under it (the verifier wants a chain, as in production).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench-ca \
    -days 3 -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench-signer \
    -keyout signer.key -out signer.csr 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=codeSigning\n' > ext
openssl x509 -req -in signer.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3 \
    -extfile ext -out signer.pem 2>/dev/null
export STELSELNODE_SIGNING_KEY_FILE="$work/signer.key" STELSELNODE_SIGNING_CERTIFICATE_CHAIN_FILE="$work/signer.pem"

"$bin" sample --zorgaanbieders "$n" --dir lists 2>/dev/null
for l in whitelist:Whitelist gnl:Gegevensdienstnamenlijst ocl:OAuthclientlist zal:Zorgaanbiederslijst; do
    "$bin" import --list "${l%%:*}" "lists/MedMij_${l#*:}.xml" >/dev/null 2>&1
done
"$bin" publish --all --confirm-mass-change >/dev/null 2>&1
zal=lists/MedMij_Zorgaanbiederslijst.xml
started=$(date +%s)
for week in $(seq 1 "$weeks"); do
    # 1 % of the Zorgaanbieders get a new authorization endpoint path this week.
    python3 - "$zal" "$week" <<'PY'
import re, sys
path, week = sys.argv[1], int(sys.argv[2])
text = open(path).read()
def change(m):
    i = int(m.group(1))
    return f"/za{i}/oauth/authorize-w{week}<" if i % 100 == week % 100 else m.group(0)
open(path, "w").write(re.sub(r"/za(\d+)/oauth/authorize[^<]*<", change, text))
PY
    "$bin" import --list zal "$zal" >/dev/null 2>&1
    "$bin" publish --list zal >/dev/null 2>&1
    for _ in 1 2 3 4 5 6; do "$bin" publish --list zal >/dev/null 2>&1; done
    [ $((week % 13)) -eq 0 ] && echo "published week $week ($(( $(date +%s) - started )) s)" >&2
done
versions=$(python3 -c "import sqlite3; print(sqlite3.connect('$work/node.db').execute('select count(*) from versions').fetchone()[0])")
largest=$(python3 -c "import sqlite3; print(sqlite3.connect('$work/node.db').execute('select max(size_bytes) from versions').fetchone()[0])")
to=$(date -u -d '+1 minute' +%Y-%m-%dT%H:%M:%SZ)

/usr/bin/time -f "export: %e s wall, peak RSS %M KiB" \
    "$bin" archive export --out bundle --to "$to" 2>&1 | grep -v '^exported [0-9]* of'
/usr/bin/time -f "verify: %e s wall, peak RSS %M KiB" \
    "$bin" archive verify bundle --ca ca.pem 2>&1
echo "versions: $versions (ZAL of $n Zorgaanbieders, $weeks weeks); largest version $largest bytes ($((largest / 1024)) KiB)"
echo "bundle: $(du -sb bundle | cut -f1) bytes in $(find bundle -type f | wc -l) files ($(ls bundle/bodies | wc -l) bodies)"
