# Shared by the benchmark scripts that run a release node (sourced, with $bin and $work set):
# the cleanup of the node, its PostgreSQL cluster and $work on exit; waiting for readiness;
# the development PKI and configuration in $work/dev; a throwaway PostgreSQL cluster.

pid=; pg_bin=; pg_dir=; pg_port=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    wait 2>/dev/null
    [ -n "$pg_dir" ] && (cd / && runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1; rm -rf "$pg_dir")
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

# Waits up to ${1:-30} seconds for the ops listener's /readyz to answer 200.
wait_ready() {
    for _ in $(seq 1 $(( ${1:-30} * 20 ))); do
        curl -fsS http://127.0.0.1:9100/readyz >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "the node did not become ready: $(curl -sS http://127.0.0.1:9100/readyz 2>&1)" >&2; exit 1
}

# The dev node makes the PKI and configuration in dev/ (its own database is not used).
make_dev_pki() {
    STELSELNODE_LOG=warn "$bin" dev --dir dev >/dev/null & pid=$!
    wait_ready; kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

# Starts a throwaway PostgreSQL cluster on port $1 (once); sets pg_bin, pg_dir, pg_port.
start_postgres() {
    [ -n "$pg_dir" ] && return 0
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -x "$pg_bin/initdb" ] || { echo "PostgreSQL is not installed (scripts/test installs it)" >&2; exit 1; }
    # Its own directory: the cluster runs as the postgres user, who cannot enter $work.
    pg_dir=$(mktemp -d /tmp/stelselnode-pg.XXXXXX); chown postgres: "$pg_dir"; pg_port=$1
    (cd / && runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 >/dev/null)
    (cd / && runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
        -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1" start >/dev/null)
}

# Imports the sample network in sample/ (`stelselnode sample`) and publishes every list, with
# the node's configuration arguments "$@".
import_sample() {
    for list in Whitelist Gegevensdienstnamenlijst OAuthclientlist Zorgaanbiederslijst; do
        case $list in Whitelist) l=whitelist;; Gegevensdienstnamenlijst) l=gnl;; OAuthclientlist) l=ocl;; *) l=zal;; esac
        "$bin" "$@" import --list "$l" "sample/MedMij_$list.xml" >/dev/null
    done
    "$bin" "$@" publish --all --confirm-mass-change >/dev/null
}
