#!/usr/bin/python3
"""ingest_client.py - a retrying publisher for Finestra intake's ingest contract v1.

Needs Debian's python3-zmq and python3-msgpack (run it with /usr/bin/python3).
See proto/INGEST.md for the contract.

    /usr/bin/python3 examples/ingest_client.py                  # the built-in example
    /usr/bin/python3 examples/ingest_client.py event.json       # an event written as JSON
    /usr/bin/python3 examples/ingest_client.py --server-key intake.key \\
        --client-cert primary-care.key_secret                  # with CURVE
"""
import argparse
import json
import os
import sys
import time

import msgpack
import zmq

EXAMPLE = {
    "v": 1,
    "id": "cap-raval-2026-000117",
    "source": "primary-care",
    "type": "health.social_risk_detected",
    "occurred_at": "2026-03-02T09:30:00+01:00",
    "subject": {
        "doc_type": "NIE",
        "doc_number": "X1234567L",
        "given_name": "Fatima",
        "family_name": "El Amrani",
        "birth_date": "1987-11-23",
        "address": {"street": "Carrer de Sant Pau", "number": "58, 3r 2a",
                    "postcode": "08001", "neighbourhood": "el Raval"},
        "phone": None,          # None means "no value": the same as leaving the key out
        "language": "ca",
    },
    "data": {
        "icd10_codes": ["Z59.0", "Z60.2"],
        "suggested_level": "complementation",
        "urgency": "preferent",
        "consent_ref": "CAP-RAVAL-2026-000117",
    },
}


def read_cert(path):
    """Public and secret key (Z85) from a zcert file; secret is None for a public one."""
    public = secret = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("public-key"):
                public = line.split("=", 1)[1].strip().strip('"')
            elif line.startswith("secret-key"):
                secret = line.split("=", 1)[1].strip().strip('"')
    return public, secret


class Publisher:
    """Sends events one at a time over REQ and waits for each receipt.

    After a timeout the REQ socket is closed and a new one re-sends the SAME bytes: a
    REQ socket that lost its reply cannot be used again, and intake answers `duplicate`
    (with the first ref) if the first copy was stored after all."""

    def __init__(self, endpoint, timeout_ms=3000, server_key=None, client_cert=None):
        self.ctx = zmq.Context.instance()
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.server_key = server_key
        self.client_cert = client_cert
        self.sock = None

    def _socket(self):
        sock = self.ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        if self.server_key:
            public, secret = read_cert(self.client_cert)
            sock.curve_publickey = public.encode()
            sock.curve_secretkey = secret.encode()
            sock.curve_serverkey = self.server_key.encode()
        sock.connect(self.endpoint)
        return sock

    def publish(self, event, attempts=0):
        """Returns the receipt (a dict) once the event is settled: accepted, duplicate,
        or rejected for a reason other than `unavailable`. Raises TimeoutError after
        `attempts` tries (0: keep trying)."""
        data = msgpack.packb(event, use_bin_type=True)    # packed ONCE: re-sends are identical
        backoff = 0.1
        attempt = 0
        while True:
            attempt += 1
            if attempts and attempt > attempts:
                raise TimeoutError("no settled receipt after %d attempts" % attempts)
            if self.sock is None:
                self.sock = self._socket()
            self.sock.send(data)
            if not self.sock.poll(self.timeout_ms, zmq.POLLIN):
                self.sock.close()                # never reuse a REQ after a timeout
                self.sock = None
                continue
            receipt = msgpack.unpackb(self.sock.recv(), raw=False)
            if receipt.get("error", {}).get("code") == "unavailable":
                time.sleep(backoff)              # intake's database is down: later
                backoff = min(backoff * 2, 5.0)
                continue
            return receipt

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def main():
    parser = argparse.ArgumentParser(description="Publish one event to Finestra intake.")
    parser.add_argument("file", nargs="?", help="event as JSON (default: built-in example)")
    parser.add_argument("--endpoint", default=os.environ.get("FINESTRA_INTAKE_ENDPOINT")
                        or "tcp://127.0.0.1:5555")
    parser.add_argument("--timeout", type=int, default=3000, help="ms to wait per attempt")
    parser.add_argument("--attempts", type=int, default=0, help="0: keep trying")
    parser.add_argument("--server-key", help="CURVE: intake's public key, Z85 or its .key file")
    parser.add_argument("--client-cert", help="CURVE: this client's secret certificate file")
    args = parser.parse_args()
    if bool(args.server_key) != bool(args.client_cert):
        parser.error("--server-key and --client-cert go together")
    server_key = args.server_key
    if server_key and len(server_key) != 40:
        server_key = read_cert(server_key)[0]
    if args.file:
        with open(args.file) as f:
            event = json.load(f)
    else:
        event = EXAMPLE
    publisher = Publisher(args.endpoint, args.timeout, server_key, args.client_cert)
    try:
        receipt = publisher.publish(event, args.attempts)
    except TimeoutError as e:
        print("gave up: %s" % e, file=sys.stderr)
        return 1
    finally:
        publisher.close()
    print(json.dumps(receipt, ensure_ascii=False))
    return 0 if receipt["status"] in ("accepted", "duplicate") else 1


if __name__ == "__main__":
    sys.exit(main())
