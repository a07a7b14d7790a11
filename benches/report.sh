#!/usr/bin/env bash
# Runs every benchmark (issue 12; the restore drill of issue 23) on this machine and writes BENCHMARKS.md: machine, date,
# commit, each figure with its target and PASS/FAIL. Takes about an hour; run it on an
# otherwise idle machine (it is shared and noisy: serving figures are ratios of runs made side
# by side, the rest medians).
#
#   benches/report.sh            (SKIP="serve mutations restore" leaves parts out while iterating)
set -euo pipefail
cd "$(dirname "$0")/.."
results=$(mktemp)
trap 'rm -f "$results"' EXIT
export RESULTS=$results
skip=" ${SKIP:-} "
cargo build --release --quiet --bin stelselnode --examples

if [[ $skip != *" publish "* ]]; then
    echo "== publication (criterion, in process)" >&2
    cargo bench --quiet --bench publish -- --noplot >&2
    for size in 10000 50000; do
        python3 - "$size" >>"$results" <<'PY'
import json, sys
size = sys.argv[1]
e = json.load(open(f"target/criterion/publish_zal_sqlite/{size}/new/estimates.json"))
print(f"publish\t{size}\t{e['median']['point_estimate'] / 1e9:.3f}")
PY
    done
fi
if [[ $skip != *" import "* ]]; then
    echo "== import and CLI publication" >&2
    NODE_BIN=$PWD/target/release/stelselnode bash benches/publish-memory.sh 10000 >&2
fi
if [[ $skip != *" serve "* ]]; then
    for logs in off on; do
        echo "== serving beside nginx, access logs $logs" >&2
        LOGS=$logs bash benches/load-vs-nginx.sh 10000 "${SERVE_SECONDS:-3}" "16 64 256" >&2
    done
fi
if [[ $skip != *" encodings "* ]]; then
    echo "== body sizes per content coding (issue 25)" >&2
    sample=$(mktemp -d)
    target/release/stelselnode sample --zorgaanbieders 10000 --dir "$sample" >/dev/null 2>&1
    zal=$sample/MedMij_Zorgaanbiederslijst.xml
    target/release/examples/encodings "$zal" | awk -F'\t' '$1 ~ /^(identity|node )/ {print "size\t" $1 "\t" $2 "\t" $3}' >>"$results"
    command -v brotli zstd >/dev/null || { echo "brotli and zstd are needed (scripts/test installs them)" >&2; exit 1; }
    for tool in "gzip -9" "brotli -q 11" "zstd -19"; do
        started=$(date +%s.%N)
        bytes=$($tool -c "$zal" | wc -c)
        printf 'size\t%s\t%s\t%.2f\n' "$tool" "$bytes" "$(echo "$(date +%s.%N) - $started" | bc)" >>"$results"
    done
    rm -rf "$sample"
fi
if [[ $skip != *" mutations "* ]]; then
    echo "== mutation workflow under load" >&2
    NODE_BIN=$PWD/target/release/stelselnode bash benches/mutations-load.sh 10000 60 500 16 5 >&2
fi
if [[ $skip != *" restore "* ]]; then
    echo "== disaster-recovery drill (a generated year, restored)" >&2
    NODE_BIN=$PWD/target/release/stelselnode bash benches/restore-drill.sh 10000 52 >&2
fi

python3 - "$results" "$(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')" <<'PY' > BENCHMARKS.md
import collections, datetime, platform, subprocess, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
commit = sys.argv[2]
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
memory = next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
out = []
verdicts = []
def row(what, figure, target, ok, note=""):
    verdicts.append(ok)
    out.append(f"| {what} | {figure} | {target} | {'PASS' if ok else '**FAIL**'} | {note} |")

for r in rows:
    kind = r[0]
    if kind == "publish":
        size, seconds = r[1], float(r[2])
        target = 0.4 if size == "10000" else 2.0
        row(f"publish {int(size):,}-Zorgaanbieder ZAL (render, check, sign, gzip, store)",
            f"{seconds:.3f} s", f"≤ {target} s", seconds <= target, "criterion median, in process, SQLite")
    elif kind == "import":
        _, n, seconds, peak, cli_publish = r
        row(f"import {int(n):,}", f"{float(seconds):.2f} s", "≤ 0.8 s", float(seconds) <= 0.8, "CLI wall time, median of 5")
        row("import peak memory / document size", f"{float(peak):.2f}×", "≤ 3×", float(peak) <= 3.0, "peak RSS of the CLI, median of 5")
        out.append(f"| first publication through the CLI (process start included) | {float(cli_publish):.2f} s | — | — | for reference |")

serve = [r for r in rows if r[0] == "serve"]
by_case = collections.defaultdict(dict)
for _, case, connections, tool, ratio, low, high, node, nginx, *logs in serve:
    by_case[(case, int(connections), logs[0] if logs else "off")][tool] = (float(ratio), float(low), float(high), node, nginx)
for (case, connections, logs), tools in sorted(by_case.items(), key=lambda kv: (kv[0][2], ["identity", "gzip", "304"].index(kv[0][0]), kv[0][1])):
    oha = tools.get("oha")
    loadgen = tools.get("loadgen")
    if not oha:
        continue
    note = f"oha: node {oha[3]} / nginx {oha[4]} req/s, rounds {oha[1]:.2f}–{oha[2]:.2f}"
    if loadgen:
        note += f"; loadgen {loadgen[0]:.2f} (rounds {loadgen[1]:.2f}–{loadgen[2]:.2f})"
    row(f"serve {case}, node/nginx at {connections} connections, access logs {logs}", f"{oha[0]:.2f}", "≥ 1.2",
        oha[0] >= 1.2, note)

sizes = {r[1]: (int(r[2]), float(r[3])) for r in rows if r[0] == "size"}
if "node gzip" in sizes and "gzip -9" in sizes:
    for node, tool in [("node gzip", "gzip -9"), ("node br", "brotli -q 11"), ("node zstd", "zstd -19")]:
        (mine, seconds), (theirs, their_seconds) = sizes[node], sizes[tool]
        target = "≤ 1.05 × gzip -9" if node == "node gzip" else "—"
        ok = mine <= 1.05 * theirs if node == "node gzip" else True
        row(f"{node.split()[1]} body of a 10,000-Zorgaanbieder ZAL ({sizes['identity'][0]:,} bytes)",
            f"{mine:,} bytes ({seconds:.2f} s)", target, ok,
            f"`{tool}`: {theirs:,} bytes in {their_seconds:.1f} s → {mine / theirs:.3f}×")

for r in rows:
    if r[0] != "mutations":
        continue
    _, backend, p50, p99, worst, first_minute, errors, served = r
    row(f"mutation load, realistic mix at 500/s ({backend}) p99", f"{float(p99):.1f} ms", "≤ 30 ms",
        float(p99) <= 30 and errors == "0", f"p50 {float(p50):.1f} ms, max {float(worst):.0f} ms, errors {errors}")
    row(f"no stall in the first minute after start ({backend}): max", f"{float(first_minute):.0f} ms", "≤ 200 ms",
        float(first_minute) <= 200)
    row(f"approval → new version served, 10k ZAL ({backend})", f"{float(served):.0f} ms", "≤ 150 ms", float(served) <= 150,
        "median of 5 rounds, back to back")

for r in rows:
    if r[0] != "served":
        continue
    _, backend, when, ms = r
    what, target = {"cold": ("first approval after a CLI import → served", 300),
                    "saturated": ("approval → served while oha holds 256 connections on gzip", 1000)}[when]
    row(f"{what}, 10k ZAL ({backend})", f"{float(ms):.0f} ms", f"≤ {target} ms", float(ms) <= target, "median of 5 rounds")

for r in rows:
    if r[0] != "restore":
        continue
    _, backend, seconds, peak_kib, largest, ready_ms = r
    ratio = int(peak_kib) * 1024 / int(largest)
    row(f"restore a year from its bundles ({backend})", f"{float(seconds):.1f} s", "≤ 60 s", float(seconds) <= 60,
        "364 nightly bundles, 1 460 versions, 5 200 mutations; wall time of archive restore")
    row(f"restore peak memory / largest version ({backend})", f"{ratio:.2f}×", "≤ 2×", ratio <= 2.0,
        f"peak RSS {int(peak_kib) // 1024} MiB, largest version {int(largest) // 1024 // 1024} MiB")
    row(f"empty database → /readyz 200 ({backend})", f"{int(ready_ms) / 1000:.1f} s", "≤ 120 s",
        int(ready_ms) <= 120_000, "restore, then the node started and ready")

print("# Benchmarks\n")
print(f"Written by `benches/report.sh` on {datetime.date.today()} for commit `{commit}`.  ")
print(f"Machine: {cores} cores ({model}), {int(memory) // 1024 // 1024} GiB, {platform.system()} {platform.release()}.  ")
print("Every figure is a median; serving figures are ratios of node and nginx runs made side by side in one run "
      "(the machine is shared and noisy), judged on oha with the project's own load generator as a second opinion.\n")
print(f"**{sum(verdicts)} of {len(verdicts)} targets met.**\n")
print("| what | figure | target | verdict | how / notes |")
print("|---|---|---|---|---|")
print("\n".join(out))
PY
echo "wrote BENCHMARKS.md" >&2
