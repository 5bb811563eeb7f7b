#!/usr/bin/env bash
# API fuzzing: schemathesis reads /api/openapi.json from a live demo server
# and runs every check against every operation three times: as an anonymous
# caller, as the demo shopper and as the demo staff member. Any 5xx, any
# response the document does not describe, or any other failed check fails
# the run. Called from .ci/run; needs python3 with venv. See README.md here.
#
# FUZZ_EXAMPLES (examples per operation and phase) and FUZZ_SEED tune a run;
# FUZZ_ROLES picks the roles ("anonymous shopper staff" by default).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
venv="${FUZZ_VENV:-target/fuzz-venv}"
examples="${FUZZ_EXAMPLES:-40}"
seed="${FUZZ_SEED:-20240611}"
roles="${FUZZ_ROLES:-anonymous shopper staff}"

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/fuzz/requirements.txt

# `cargo test` in .ci/run has built it; this is a no-op then.
cargo build --quiet --locked --bin storefront

work="$(mktemp -d)"
mkdir -p target/fuzz
log="$root/target/fuzz/server.log"
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
on_exit() {
  status=$?
  stop_server
  if [ "$status" -ne 0 ] && [ -f "$log" ]; then
    echo "== fuzz: server errors and panics ($log)"
    grep -E 'ERROR|panicked' "$log" | tail -n 20 | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-2000 || true
    echo "== fuzz: last lines of the server log"
    tail -n 15 "$log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-2000
  fi
  rm -rf "$work"
  exit "$status"
}
trap on_exit EXIT

# Rate limits are lifted: the fuzzer sends thousands of requests from one
# address, and 429 has its own tests (tests/api/limits.rs). The document
# still lists 429 on the limited routes.
target/debug/storefront serve --demo \
  --addr 127.0.0.1:0 --data-dir "$work/data" \
  --rate-limits off --login-failures-per-address 100000 \
  --password-hash-queue 1000 >"$log" 2>&1 &
server_pid=$!

port=""
for _ in $(seq 300); do
  port="$(sed -n 's|^Storefront listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$log")"
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "the server did not start"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "the server did not report its port"; exit 1; }
base="http://127.0.0.1:$port"
echo "== fuzz: server on $base (log: $log)"

# The demo writes its random logins next to its data.
access_token() {
  local role="$1" user password
  read -r _ user password < <(grep "^$role " "$work/data/demo-credentials.txt")
  curl -fsS -H 'Content-Type: application/json' \
    -d "{\"username\":\"$user\",\"password\":\"$password\"}" "$base/api/auth/login/" |
    "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["access"])'
}

failed=""
for role in $roles; do
  auth=()
  case "$role" in
    anonymous) ;;
    shopper | staff) auth=(-H "Authorization: Bearer $(access_token "$role")") ;;
    *) echo "unknown role $role"; exit 2 ;;
  esac
  echo "== fuzz: schemathesis as $role ($examples examples per operation, seed $seed)"
  if ! "$venv/bin/schemathesis" --config-file tests/fuzz/schemathesis.toml run \
    "$base/api/openapi.json" \
    --checks all \
    --seed "$seed" \
    --max-examples "$examples" \
    --workers 2 \
    --generation-database none \
    --no-color \
    "${auth[@]}" \
    --report junit --report-junit-path "target/fuzz/junit-$role.xml"; then
    failed="$failed $role"
  fi
  kill -0 "$server_pid" 2>/dev/null || { echo "the server died during the $role run"; exit 1; }
done

if [ -n "$failed" ]; then
  echo "== fuzz: failures as:$failed"
  exit 1
fi
echo "== fuzz: no failures"
