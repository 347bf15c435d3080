#!/usr/bin/env bash
# Runs `faultline-bench load` once per argument, each against a fresh release server with a
# fresh data directory (so throughput and peak RSS are comparable between runs), and prints a
# Markdown row per run. The figures in BENCHMARKS.md were made this way.
#
# Usage (from the repository root, after `cargo build --release -p faultline -p faultline-bench`):
#   bench/run-matrix.sh "--mode rest --seconds 15 --concurrency 32" "--mode grpc-batch --seconds 15 --concurrency 32"
# Env: PORT (default 18090), DATA (default /tmp/faultline-bench-data; deleted before each run),
#      FAULTLINE_BIN, BENCH_BIN (default target/release/...), OUT (keeps each run's output; default a temp dir),
#      PG_URL (e.g. postgres://postgres@127.0.0.1:5432/ft_bench, or over the Unix socket
#      postgres://postgres@%2Fvar%2Frun%2Fpostgresql/ft_bench): run on PostgreSQL instead of
#      SQLite; that database is dropped and created again before each run (via psql),
#      SERVER_ARGS (more server flags, e.g. "--queue-depth 1000" for an overload run),
#      NULL_SERVER=1: run against `faultline-bench null-server` instead of Faultline, a server
#      that answers capture calls in Faultline's shapes and does nothing else (stores nothing),
#      to measure the ceiling of the transport and the load generator on this machine. The
#      runs then use `--key null --no-verify` (there is nothing to read back); FAULTLINE_BIN,
#      DATA, PG_URL and SERVER_ARGS are not used. Rows say "null server" in the committed column.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PORT=${PORT:-18090}
DATA=${DATA:-/tmp/faultline-bench-data}
SERVER_BIN=${FAULTLINE_BIN:-target/release/faultline}
BENCH_BIN=${BENCH_BIN:-target/release/faultline-bench}
OUT=${OUT:-$(mktemp -d -t faultline-bench-matrix.XXXXXX)}
mkdir -p "$OUT"
SERVER_PID=""
stop_server() {
  if [[ -n $SERVER_PID ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT

echo "| mode | conc. | batch | loop | events/s accepted | acked | committed == acked | p50 / p90 / p99 / max ms | server peak RSS MiB | CPU % server / bench | KiB written per event | statuses |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
n=0
for args in "$@"; do
  n=$((n + 1))
  if [[ ${NULL_SERVER:-} == 1 ]]; then
    "$BENCH_BIN" null-server --listen "127.0.0.1:$PORT" >"$OUT/server-$n.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
      grep -q '^null server listening' "$OUT/server-$n.log" 2>/dev/null && break
      sleep 0.1
    done
    key_args=(--key null)
    # load refuses a flag given twice.
    [[ " $args " == *" --no-verify "* ]] || key_args+=(--no-verify)
  else
    rm -rf "$DATA"
    db_args=()
    if [[ -n ${PG_URL:-} ]]; then
      db=${PG_URL##*/}
      psql -q "${PG_URL%/*}/postgres" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "CREATE DATABASE \"$db\""
      db_args=(--database-url "$PG_URL")
    fi
    # shellcheck disable=SC2086
    "$SERVER_BIN" --listen "127.0.0.1:$PORT" --data-dir "$DATA" "${db_args[@]}" ${SERVER_ARGS:-} \
      --rate-limit-ingest 0 --rate-limit-analytics 0 --rate-limit-general 0 >"$OUT/server-$n.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
      grep -q '^Faultline listening' "$OUT/server-$n.log" 2>/dev/null && [[ -s $DATA/admin.key ]] && break
      sleep 0.1
    done
    key_args=(--key-file "$DATA/admin.key")
  fi
  # shellcheck disable=SC2086
  "$BENCH_BIN" load --target "http://127.0.0.1:$PORT" "${key_args[@]}" $args \
    >"$OUT/run-$n.txt" 2>&1 || echo "run $n ($args) exited non-zero: see $OUT/run-$n.txt" >&2
  stop_server
  NULL_SERVER=${NULL_SERVER:-} python3 - "$OUT/run-$n.txt" "$args" <<'PY'
import json, os, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("RESULT ")]
if not lines:
    print(f"| {sys.argv[2]}: no RESULT line |")
    sys.exit()
r = json.loads(lines[-1][len("RESULT "):])
L, S = r["latency"], r["server"]
ok = {True: "yes", False: "**NO**", None: "not checked"}[r["committed_matches_acked"]]
if os.environ.get("NULL_SERVER") == "1":
    ok = "null server"
loop = f"open {r['rate']:g}/s" if r["rate"] else "closed"
statuses = ", ".join(f"{k}: {v}" for k, v in r["statuses"].items())
print(
    f"| {r['mode']} | {r['concurrency']} | {r['batch']} | {loop} | {r['acked_events_per_s']:.0f} "
    f"| {r['events_acked']} | {ok} | {L['p50_ms']:.1f} / {L['p90_ms']:.1f} / {L['p99_ms']:.1f} / {L['max_ms']:.1f} "
    f"| {S['peak_rss_mib']} | {S['server_cpu_pct']} / {S['bench_cpu_pct']} | {r.get('written_kib_per_event')} | {statuses} |"
)
PY
done
rm -rf "$DATA"
echo "(outputs in $OUT)" >&2
