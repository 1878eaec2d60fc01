#!/usr/bin/env python3
"""End-to-end check of a running Finestra suite: one external event in, the whole chain out.

    e2e_check.py --endpoint tcp://127.0.0.1:5556 \
                 --psql "docker exec -i finestra-smoke-1_postgres_1 psql -U finestra -d finestra"

1. Sends ONE ingest event (contract v1: a health.social_risk_detected from primary-care) on a
   REQ socket to intake's ingest endpoint and expects ONE receipt frame: status "accepted"
   and a "ref".
2. Polls PostgreSQL (through the given psql command prefix, so the same check runs against
   a container or a local run) until:
     intake.events                has 1 row: source 'primary-care', external_id = the id,
                                  ref = the receipt's ref;
     referral_router.referrals    has 1 row with correlation_id = that ref;
     notification.notifications   has 1 row with correlation_id = that ref;
     reporting.event_counts       has grown by 1 for intake.referral_requested,
                                  referral.status_changed and notification.queued
                                  (on a fresh database: count = 1 each).
Exit 0 when all hold, 1 otherwise (it prints what was missing). Needs python3-zmq and
python3-msgpack (Debian packages).
"""
import argparse
import datetime
import shlex
import subprocess
import sys
import time
import uuid

import msgpack
import zmq

COUNTED_TYPES = ("intake.referral_requested", "referral.status_changed", "notification.queued")


def log(msg):
    print(f"e2e: {msg}", flush=True)


def psql(prefix, sql):
    """Runs one statement, returns rows as lists of strings (psql -At, '|' separated)."""
    cmd = prefix + ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip() or f"psql exited {proc.returncode}")
    return [line.split("|") for line in proc.stdout.splitlines() if line.strip()]


def lit(value):
    return "'" + str(value).replace("'", "''") + "'"


def event_counts(prefix):
    """{type: count} for the counted types; missing table or rows count as 0."""
    types = ", ".join(lit(t) for t in COUNTED_TYPES)
    try:
        rows = psql(prefix, f"SELECT type, count FROM reporting.event_counts WHERE type IN ({types})")
    except RuntimeError as exc:
        if "does not exist" in str(exc):
            return {t: 0 for t in COUNTED_TYPES}
        raise
    counts = {t: 0 for t in COUNTED_TYPES}
    for row in rows:
        counts[row[0]] = int(row[1])
    return counts


def make_event(event_id):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return {
        "v": 1,
        "id": event_id,
        "source": "primary-care",
        "type": "health.social_risk_detected",
        "occurred_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "subject": {
            "doc_type": "DNI",
            "doc_number": "12345678Z",
            "given_name": "Anna",
            "family_name": "Puig",
            "birth_date": "1980-04-01",
            "address": {"street": "Carrer de la Riera Baixa", "number": "7", "postcode": "08001"},
        },
        "data": {"icd10_codes": ["Z59.0"], "suggested_level": "complementation", "urgency": "urgent"},
    }


def send_event(endpoint, event, timeout_s):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout_s * 1000))
    sock.setsockopt(zmq.SNDTIMEO, int(timeout_s * 1000))
    try:
        sock.connect(endpoint)
        sock.send(msgpack.packb(event, use_bin_type=True))
        frames = sock.recv_multipart()
    except zmq.Again:
        raise RuntimeError(f"no receipt from {endpoint} within {timeout_s:.0f} s")
    finally:
        sock.close()
    if len(frames) != 1:
        raise RuntimeError(f"expected one receipt frame, got {len(frames)}")
    receipt = msgpack.unpackb(frames[0], raw=False)
    if not isinstance(receipt, dict):
        raise RuntimeError(f"receipt is not a map: {receipt!r}")
    return receipt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default="tcp://127.0.0.1:5555", help="intake's ingest endpoint")
    ap.add_argument("--psql", default="psql", help="psql command prefix (connection options included)")
    ap.add_argument("--id", default=None, help="event id (default smoke-<uuid>)")
    ap.add_argument("--receipt-timeout", type=float, default=15.0, help="seconds to wait for the receipt")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the chain in PostgreSQL")
    args = ap.parse_args()

    prefix = shlex.split(args.psql)
    event_id = args.id or f"smoke-{uuid.uuid4().hex}"
    try:
        before = event_counts(prefix)
    except Exception as exc:  # noqa: BLE001 - report any failure as a failed check
        log(f"FAIL: cannot query PostgreSQL with {args.psql!r}: {exc}")
        return 1
    log(f"event counts before: {before}")

    log(f"sending {event_id} to {args.endpoint}")
    try:
        receipt = send_event(args.endpoint, make_event(event_id), args.receipt_timeout)
    except Exception as exc:  # noqa: BLE001
        log(f"FAIL: {exc}")
        return 1
    log(f"receipt: {receipt}")
    ref = receipt.get("ref")
    if receipt.get("status") != "accepted" or not ref:
        log("FAIL: expected status 'accepted' and a ref")
        return 1
    if isinstance(ref, bytes):
        ref = ref.decode()

    checks = {
        "intake.events": (
            "SELECT count(*) FROM intake.events "
            f"WHERE source = 'primary-care' AND external_id = {lit(event_id)} AND ref::text = {lit(ref)}"),
        "referral_router.referrals": (
            f"SELECT count(*) FROM referral_router.referrals WHERE correlation_id::text = {lit(ref)}"),
        "notification.notifications": (
            f"SELECT count(*) FROM notification.notifications WHERE correlation_id::text = {lit(ref)}"),
    }
    deadline = time.monotonic() + args.timeout
    status = {}
    while True:
        try:
            for name, sql in checks.items():
                status[name] = int(psql(prefix, sql)[0][0])
            after = event_counts(prefix)
            for t in COUNTED_TYPES:
                status[f"event_counts[{t}]"] = after[t] - before[t]
            last_error = None
        except Exception as exc:  # noqa: BLE001 - tables may appear late; keep polling
            last_error = str(exc)
        if last_error is None and all(v == 1 for v in status.values()):
            log(f"chain complete for ref {ref}: {status}")
            return 0
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    log(f"FAIL after {args.timeout:.0f} s: expected 1 for each of {status}" +
        (f" (last error: {last_error})" if last_error else ""))
    return 1


if __name__ == "__main__":
    sys.exit(main())
