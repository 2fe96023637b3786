"""Signing cost per webhook request, in-process: the Twilio JSON signature (bodySHA256 + HMAC-SHA1 of the
URL) and the Standard Webhooks one (HMAC-SHA256 of id.timestamp.body), as the webhook sink adds both.

    python -m bench.signing [--requests 50000] [--body 800]

Prints the best of three CPU µs per request. docs/benchmarks.md ("Issue 13, fourth session") has the figures.
"""

from __future__ import annotations

import argparse
import time

from eventstreams.sinks.signing import new_standard_webhook_secret, standard_webhook_headers, twilio_json_signature


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--body", type=int, default=800, help="body bytes")
    args = ap.parse_args()
    body = b'{"x":"' + b"y" * max(0, args.body - 8) + b'"}'
    secret = new_standard_webhook_secret()
    url = "http://127.0.0.1:8080/hook/path?a=1"
    best = float("inf")
    for _ in range(3):
        t = time.process_time()
        for i in range(args.requests):
            twilio_json_signature(url, body, "0123456789abcdef0123456789abcdef")
            standard_webhook_headers(f"EZ{i:032x}", 1_700_000_000, body, secret)
        best = min(best, time.process_time() - t)
    print(f"both signatures, {len(body)}-byte body: {best / args.requests * 1e6:.2f} µs CPU per request")


if __name__ == "__main__":
    main()
