#!/usr/bin/env bash
# Payment checks that need the providers' Python packages: the signature
# cross-check against `stripe` and `razorpay`, and the Stripe path against
# `localstripe`: the client alone, then a whole order paid from
# localstripe's signed webhook. Called from .ci/run; needs python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${PAYMENTS_VENV:-target/payments-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet stripe razorpay localstripe

cargo build --quiet --example payment_signatures
"$venv/bin/python" tests/crosscheck/payments_signatures.py --ours target/debug/examples/payment_signatures

port="${LOCALSTRIPE_PORT:-8420}"
"$venv/bin/localstripe" --port "$port" --from-scratch >target/localstripe.log 2>&1 &
localstripe_pid=$!
trap 'kill "$localstripe_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -fs -o /dev/null -u sk_test_x: "http://127.0.0.1:$port/v1/customers" && break
  sleep 0.2
done
LOCALSTRIPE_URL="http://127.0.0.1:$port" cargo test --test api localstripe -- --ignored --test-threads 1
