#!/usr/bin/env bash
# Few-second smoke of the benchmark tool (bench/, `faultline-bench`): starts the debug server on a
# free port with a fresh data directory, runs `load --mode rest` and `load --mode grpc-batch`
# for 3 s each, and requires both to exit 0. The tool exits non-zero when nothing was
# acknowledged, on any error, and when the events committed (read back from the groups the
# answers named) differ from the events acknowledged. Then runs `store-floor` on SQLite for
# 1 s (it must print its RESULT and delete its file), drives the null server for 1 s, kills
# another null server under load (the tool must back off, not spin), restarts a third under
# gRPC load (the tool must reconnect), and stops the server with SIGTERM.
#
# Usage: .ci/bench-smoke.sh      (from anywhere; builds target/debug/faultline and faultline-bench)
# Env:   FAULTLINE_BIN           server binary (default target/debug/faultline)
#        SMOKE_KEEP=1            keep the temporary directory (server log, data)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=${FAULTLINE_BIN:-$ROOT/target/debug/faultline}
BENCH=$ROOT/target/debug/faultline-bench

fail() { printf '\nbench-smoke: FAILED: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d -t faultline-bench-smoke.XXXXXX)
SERVER_PID=""
LOG=$WORK/server.log

cleanup() {
  local rc=$?
  trap - EXIT
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -f $LOG ]]; then
    echo "----- last 40 lines of the server log ($LOG) -----" >&2
    tail -n 40 "$LOG" >&2 || true
  fi
  if [[ ${SMOKE_KEEP:-} == 1 || $rc -ne 0 ]]; then
    echo "bench-smoke: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT

echo ">>> bench-smoke: cargo build"
if [[ -z ${FAULTLINE_BIN:-} ]]; then
  cargo build -p faultline --bin faultline
fi
cargo build -p faultline-bench
[[ -x $BIN ]] || fail "no server binary at $BIN"

echo ">>> bench-smoke: starting $BIN on 127.0.0.1:0"
# One key pushes thousands of requests a minute: the per-key rate limits (1000/min ingest
# by default) are turned off for the benchmark (0 = unlimited).
"$BIN" --listen 127.0.0.1:0 --data-dir "$WORK/data" \
  --rate-limit-ingest 0 --rate-limit-analytics 0 --rate-limit-general 0 >"$LOG" 2>&1 &
SERVER_PID=$!
ADDR=""
for _ in $(seq 300); do
  ADDR=$(sed -n 's#^Faultline listening on http://\([^ ]*\).*#\1#p' "$LOG" | head -n 1)
  [[ -n $ADDR ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited before listening"
  sleep 0.1
done
[[ -n $ADDR ]] || fail "no 'Faultline listening on' banner within 30 s"
[[ -s $WORK/data/admin.key ]] || fail "no admin key at $WORK/data/admin.key"
echo "bench-smoke: server pid $SERVER_PID on $ADDR"

passed=0
failed=0
# Counts a check: `check <0 if it passed> <what passing means> <what failing means>`; the
# message of a pass may be empty. (The condition is computed as `cond && ok=0 || ok=1`, which
# `set -e` leaves alone.)
check() {
  if [[ $1 -eq 0 ]]; then
    [[ -z $2 ]] || echo "bench-smoke: $2"
    passed=$((passed + 1))
  else
    echo "bench-smoke: $3" >&2
    failed=$((failed + 1))
  fi
}

run_load() {
  local name=$1
  shift
  echo ">>> bench-smoke: load $*"
  local rc=0 ok
  timeout 120 "$BENCH" load --target "http://$ADDR" --key-file "$WORK/data/admin.key" "$@" \
    >"$WORK/$name.out" 2>&1 || rc=$?
  cat "$WORK/$name.out"
  [[ $rc -eq 0 ]] && grep -q '^RESULT {' "$WORK/$name.out" \
    && grep -q '^committed == acked: yes' "$WORK/$name.out" && ok=0 || ok=1
  check $ok "" "$name failed (exit $rc)"
}

run_load rest --mode rest --seconds 3 --concurrency 8
run_load grpc-batch --mode grpc-batch --seconds 3 --concurrency 4 --batch 50

# The storage floor (no server): one second of bare durable appends to a SQLite file.
echo ">>> bench-smoke: store-floor"
rc=0
timeout 60 "$BENCH" store-floor --database-url "sqlite://$WORK/floor.db" --seconds 1 \
  >"$WORK/floor.out" 2>&1 || rc=$?
cat "$WORK/floor.out"
[[ $rc -eq 0 ]] && grep -q '^RESULT {' "$WORK/floor.out" && [[ ! -e $WORK/floor.db ]] \
  && ok=0 || ok=1
check $ok "" "store-floor failed (exit $rc, or it left its file behind)"

# Starts `faultline-bench null-server` on a free port (or on the address $2), logging to $1;
# sets NULL_PID, and NULL_ADDR (empty when it did not come up within 10 s).
start_null_server() {
  "$BENCH" null-server --listen "${2:-127.0.0.1:0}" >"$1" 2>&1 &
  NULL_PID=$!
  NULL_ADDR=""
  for _ in $(seq 100); do
    NULL_ADDR=$(sed -n 's#^null server listening on http://\([^ ]*\).*#\1#p' "$1" | head -n 1)
    [[ -n $NULL_ADDR ]] && break
    sleep 0.1
  done
}

# The null server (the transport ceiling): it must come up and carry a second of load.
echo ">>> bench-smoke: null-server"
start_null_server "$WORK/null.log"
rc=0
if [[ -n $NULL_ADDR ]]; then
  timeout 60 "$BENCH" load --target "http://$NULL_ADDR" --key null --no-verify --mode rest \
    --seconds 1 --concurrency 4 >"$WORK/null.out" 2>&1 || rc=$?
  cat "$WORK/null.out"
else
  rc=1
  cat "$WORK/null.log"
fi
kill "$NULL_PID" 2>/dev/null || true
wait "$NULL_PID" 2>/dev/null || true
[[ $rc -eq 0 ]] && grep -q '^RESULT {' "$WORK/null.out" && ok=0 || ok=1
check $ok "" "null-server failed (exit $rc)"

# Starts a null server (log $WORK/$2.log), runs 3 s of `load --mode $1` (4 workers) against it
# (output $WORK/$2.out, printed) and kills the server after 1 s. With a third argument, starts
# another on the same address 0.5 s later (log $WORK/$2-again.log) and stops it when the load
# has ended. Fails, printing the log, when the first server does not come up.
load_through_a_kill() {
  local mode=$1 out=$WORK/$2.out log=$WORK/$2.log restart=${3:-}
  start_null_server "$log"
  local addr=$NULL_ADDR
  if [[ -z $addr ]]; then
    kill "$NULL_PID" 2>/dev/null || true
    cat "$log"
    return 1
  fi
  timeout 60 "$BENCH" load --target "http://$addr" --key null --no-verify --mode "$mode" \
    --seconds 3 --concurrency 4 >"$out" 2>&1 &
  local load_pid=$!
  sleep 1
  kill -KILL "$NULL_PID" 2>/dev/null || true
  wait "$NULL_PID" 2>/dev/null || true
  if [[ -n $restart ]]; then
    sleep 0.5
    start_null_server "$WORK/$2-again.log" "$addr"
  fi
  wait "$load_pid" || true
  if [[ -n $restart ]]; then
    kill "$NULL_PID" 2>/dev/null || true
    wait "$NULL_PID" 2>/dev/null || true
  fi
  cat "$out"
}

# A target that goes away mid-run: the closed loop must pause after each unanswered request
# (100 ms), not retry at once: 4 workers for at most 3 s give at most about 124 such errors
# (without the pause, hundreds of thousands).
echo ">>> bench-smoke: load against a server that goes away"
errors=""
if load_through_a_kill rest gone; then
  errors=$(grep -o '"error: transport":[0-9]*' "$WORK/gone.out" | cut -d: -f3 || true)
fi
[[ -n $errors ]] && ((errors <= 200)) && ok=0 || ok=1
check $ok "$errors transport errors after the target went away" \
  "the load against a vanished target did not back off (transport errors: ${errors:-none})"

# A target that goes away and comes back on the same address: the gRPC load must open its
# connections again. Each null server answers with one group of its own, so the load must
# have seen two groups.
echo ">>> bench-smoke: gRPC load against a server that restarts"
groups=""
if load_through_a_kill grpc restart again; then
  groups=$(grep -o '"groups_seen":[0-9]*' "$WORK/restart.out" | cut -d: -f2 || true)
fi
[[ $groups == 2 ]] && ok=0 || ok=1
check $ok "the gRPC load reached both servers" \
  "the gRPC load did not reconnect after the restart (groups seen: ${groups:-none})"

echo ">>> bench-smoke: stopping the server (SIGTERM)"
kill -TERM "$SERVER_PID"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
[[ $rc -eq 0 ]] || fail "the server exited with status $rc after SIGTERM"

echo "bench-smoke: $passed passed, $failed failed"
[[ $failed -eq 0 ]] || fail "$failed load run(s) failed"
