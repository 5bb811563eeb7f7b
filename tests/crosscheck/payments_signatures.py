#!/usr/bin/env python3
"""Cross-checks Storefront's payment signatures against the providers'
official Python libraries (`stripe`, `razorpay`).

It builds cases (fixed ones plus random secrets, ids and bodies with
unicode), asks our code for its signatures through the
`payment_signatures` example, and checks that:
  * stripe.WebhookSignature.verify_header accepts our Stripe-Signature header
    (and rejects it for a tampered body),
  * razorpay's Utility.verify_payment_signature / verify_webhook_signature
    accept our Razorpay signatures (and reject tampered inputs),
  * the hex digests are byte-for-byte what the libraries compute.

Usage: python3 tests/crosscheck/payments_signatures.py [--ours CMD]
  CMD defaults to `cargo run --quiet --example payment_signatures`.
Needs: pip install stripe razorpay. Exit status 0 only if everything matched.
"""

import argparse
import json
import random
import shlex
import string
import subprocess
import sys
import time
from importlib import metadata

import razorpay
import stripe
from razorpay.errors import SignatureVerificationError


def random_text(rng, n, alphabet=string.ascii_letters + string.digits):
    return "".join(rng.choice(alphabet) for _ in range(n))


def build_cases(rng, count):
    now = int(time.time())
    bodies = [
        '{"id":"evt_1","type":"payment_intent.succeeded"}',
        '{"note":"caf\u00e9 \u20b9 \u00fcml\u00e4ut","amount":1999}',
        "",
    ]
    for _ in range(count):
        bodies.append(json.dumps({"id": "evt_" + random_text(rng, 24),
                                  "text": random_text(rng, 40, string.printable)}))
    cases = {"stripe": [], "razorpay_payment": [], "razorpay_webhook": []}
    for body in bodies:
        cases["stripe"].append({"secret": "whsec_" + random_text(rng, 32),
                                "timestamp": now - rng.randint(0, 120), "body": body})
        cases["razorpay_webhook"].append({"secret": random_text(rng, 24), "body": body})
    for _ in range(count + 2):
        cases["razorpay_payment"].append({"key_secret": random_text(rng, 24),
                                          "order_id": "order_" + random_text(rng, 14),
                                          "payment_id": "pay_" + random_text(rng, 14)})
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", default="cargo run --quiet --example payment_signatures")
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    cases = build_cases(random.Random(args.seed), args.cases)
    run = subprocess.run(shlex.split(args.ours), input=json.dumps(cases), text=True,
                         capture_output=True, check=False)
    if run.returncode != 0:
        print(run.stderr, file=sys.stderr)
        return 2
    ours = json.loads(run.stdout)
    failures = []
    checked = 0

    for case in ours["stripe"]:
        header, body, secret = case["signature"], case["body"], case["secret"]
        try:
            stripe.WebhookSignature.verify_header(body, header, secret, tolerance=300)
        except stripe.SignatureVerificationError as e:
            failures.append(f"stripe rejected our header {header!r}: {e}")
        expected = stripe.WebhookSignature._compute_signature(
            f"{case['timestamp']}.{body}", secret)
        if f"v1={expected}" not in header:
            failures.append(f"stripe v1 differs: ours {header!r}, library {expected}")
        try:
            stripe.WebhookSignature.verify_header(body + " ", header, secret, tolerance=300)
            failures.append("stripe accepted a tampered body")
        except stripe.SignatureVerificationError:
            pass
        checked += 1

    for case in ours["razorpay_payment"]:
        utility = razorpay.Client(auth=("rzp_test_key", case["key_secret"])).utility
        params = {"razorpay_order_id": case["order_id"],
                  "razorpay_payment_id": case["payment_id"],
                  "razorpay_signature": case["signature"]}
        try:
            utility.verify_payment_signature(params)
        except SignatureVerificationError:
            failures.append(f"razorpay rejected our payment signature for {case['order_id']}")
        try:
            utility.verify_payment_signature(dict(params, razorpay_order_id="order_other"))
            failures.append("razorpay accepted a signature for another order")
        except SignatureVerificationError:
            pass
        checked += 1

    for case in ours["razorpay_webhook"]:
        utility = razorpay.Client(auth=("rzp_test_key", "unused")).utility
        try:
            utility.verify_webhook_signature(case["body"], case["signature"], case["secret"])
        except SignatureVerificationError:
            failures.append(f"razorpay rejected our webhook signature for body {case['body'][:30]!r}")
        checked += 1

    for failure in failures:
        print("MISMATCH:", failure)
    print(f"checked {checked} signatures against stripe {stripe.VERSION} and "
          f"razorpay {metadata.version('razorpay')}: "
          f"{'all matched' if not failures else f'{len(failures)} failures'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
