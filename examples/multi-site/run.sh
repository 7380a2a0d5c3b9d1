#!/usr/bin/env bash
# Runs examples/multi-site with its Terraform state in PostgreSQL, the way a
# team shares state, on a PostgreSQL this script starts on this machine.
#
#   examples/multi-site/run.sh up [ARGS]      start PostgreSQL, terraform init + apply
#   examples/multi-site/run.sh plan [ARGS]    terraform plan
#   examples/multi-site/run.sh apply [ARGS]   terraform apply
#   examples/multi-site/run.sh down [ARGS]    terraform destroy, then stop PostgreSQL
#   examples/multi-site/run.sh tf ARGS        any terraform command (e.g. `tf state list`)
#   examples/multi-site/run.sh pg-start | pg-stop | status | env | psql | clean
#
# Environment:
#   PG_CONN_STR           use this PostgreSQL (e.g. your team's) instead of
#                         starting one; the script then never starts or stops
#                         a server. Give the password, if any, through
#                         PGPASSWORD or ~/.pgpass, never in the string.
#   LOCK_TIMEOUT          how long plan/apply/destroy wait for another run's
#                         state lock (default 5m; Terraform's default is 0s).
#   MULTI_SITE_BUILD_DIR  where the local PostgreSQL keeps its data
#                         (default .build/multi-site, git-ignored).
#   HYBRID_ENDPOINT, HYBRID_TOKEN, HYBRID_CA_CERT_FILE, TF_CLI_CONFIG_FILE:
#                         the hybrid-host to manage and how to find the
#                         provider; taken from .build/quickstart/env.sh
#                         (`cargo xtask quickstart`) when unset.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${MULTI_SITE_BUILD_DIR:-$repo/.build/multi-site}"
pg_dir="$build/pg"
data="$pg_dir/data"
database="hybrid_state"
pg_user="terraform"
lock_timeout="${LOCK_TIMEOUT:-5m}"

die() {
    echo "run.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

# PostgreSQL refuses to run as root; as root (containers, CI) run its
# programs as the `postgres` system user, which must own the data.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' system user to run PostgreSQL as"
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_running() {
    [ -s "$data/PG_VERSION" ] && as_pg pg_ctl status -D "$data" >/dev/null 2>&1
}

# A loopback port nothing listens on (a refused connection means free).
free_port() {
    local port tries
    for tries in $(seq 1 200); do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "no free loopback port found"
}

local_conn_str() {
    [ -s "$pg_dir/port" ] || die "no local PostgreSQL; run '$0 pg-start' first"
    echo "postgres://$pg_user@127.0.0.1:$(cat "$pg_dir/port")/$database?sslmode=disable"
}

pg_start() {
    if pg_running; then
        echo "PostgreSQL is already running: $(local_conn_str)"
        return
    fi
    mkdir -p "$pg_dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$pg_dir"
    fi
    if [ ! -s "$data/PG_VERSION" ]; then
        # Trust authentication is safe only because the server listens on
        # loopback alone (below) and the data is this user's: a shared
        # server uses passwords or certificates.
        as_pg initdb -D "$data" -U "$pg_user" --auth=trust --no-locale -E UTF8 \
            >"$pg_dir/initdb.log" 2>&1 || die "initdb failed; see $pg_dir/initdb.log"
        # The database that holds Terraform's state, created in single-user
        # mode so that only the server's own programs are needed.
        echo "CREATE DATABASE $database;" | as_pg postgres --single -D "$data" postgres \
            >"$pg_dir/createdb.log" 2>&1 || die "creating the database failed; see $pg_dir/createdb.log"
        echo "include_if_exists = 'listen.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
    fi
    local port
    port="$(free_port)"
    # Loopback TCP only, and no Unix socket (nothing to clash with, no path
    # length limit).
    printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = ''\n" "$port" |
        as_pg tee "$data/listen.conf" >/dev/null
    as_pg pg_ctl -D "$data" -l "$pg_dir/postgres.log" -w -t 60 start >/dev/null ||
        die "PostgreSQL did not start; see $pg_dir/postgres.log"
    echo "$port" >"$pg_dir/port"
    echo "PostgreSQL is running: $(local_conn_str)"
}

pg_stop() {
    if pg_running; then
        as_pg pg_ctl -D "$data" -m fast -w stop >/dev/null
        echo "PostgreSQL stopped (its data stays in $data; '$0 clean' removes it)."
    fi
}

# The state backend's connection string: the caller's, else the local one.
conn_str() {
    if [ -n "${PG_CONN_STR:-}" ]; then
        echo "$PG_CONN_STR"
    else
        pg_running || die "no PostgreSQL: run '$0 pg-start' (or '$0 up'), or set PG_CONN_STR"
        local_conn_str
    fi
}

tf() {
    if [ -z "${HYBRID_ENDPOINT:-}" ] && [ -f "$repo/.build/quickstart/env.sh" ]; then
        # shellcheck disable=SC1091
        source "$repo/.build/quickstart/env.sh"
    fi
    [ -n "${HYBRID_ENDPOINT:-}" ] ||
        die "no hybrid-host: start one with 'cargo xtask quickstart --no-apply' or set HYBRID_ENDPOINT, HYBRID_TOKEN and HYBRID_CA_CERT_FILE"
    PG_CONN_STR="$(conn_str)" terraform -chdir="$here" "$@"
}

init() {
    tf init -input=false "$@"
}

cmd="${1:-}"
[ -n "$cmd" ] || usage 1
shift
case "$cmd" in
up)
    [ -n "${PG_CONN_STR:-}" ] || pg_start
    init
    tf apply -lock-timeout="$lock_timeout" "$@"
    ;;
plan | apply)
    tf "$cmd" -lock-timeout="$lock_timeout" "$@"
    ;;
down)
    tf destroy -lock-timeout="$lock_timeout" "$@"
    [ -n "${PG_CONN_STR:-}" ] || pg_stop
    ;;
init) init "$@" ;;
tf) tf "$@" ;;
pg-start) pg_start ;;
pg-stop) pg_stop ;;
status)
    if pg_running; then echo "PostgreSQL is running: $(local_conn_str)"; else echo "PostgreSQL is not running."; fi
    ;;
env) echo "export PG_CONN_STR='$(conn_str)'" ;;
psql) exec psql "$(conn_str)" "$@" ;;
clean)
    pg_stop
    rm -rf "$build"
    ;;
-h | --help | help) usage 0 ;;
*)
    echo "run.sh: unknown command '$cmd'" >&2
    usage 1
    ;;
esac
