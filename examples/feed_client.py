#!/usr/bin/python3
"""feed_client.py - a durable reader of the Finestra referral-router's outbound feed (v1).

Needs Debian's python3-zmq and python3-msgpack (run it with /usr/bin/python3).
See proto/FEED.md for the contract.

    /usr/bin/python3 examples/feed_client.py --feed eaia                # follow the feed
    /usr/bin/python3 examples/feed_client.py --feed eaia --once         # read what waits, stop
    /usr/bin/python3 examples/feed_client.py --feed eaia --accept       # and accept referrals
    /usr/bin/python3 examples/feed_client.py --feed eaia --server-key router-feed.key \\
        --client-cert eaia.key_secret                                   # with CURVE

The cursor (the seq of the last item processed) is kept in a file, written after each
batch is processed and synced to disk: a reader killed at any point starts again from
it, and sees at most the last batch twice (delivery is at least once; item_id tells a
repeat). It never skips items: a cursor older than what the router keeps is reported
(cursor_expired) and the reader stops unless --skip-lost says to go on.
"""
import argparse
import json
import os
import sys
import time

import msgpack
import zmq


def load_cursor(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0


def save_cursor(path, seq):
    # Written to a temporary file, synced, then renamed over the old one: never half a cursor
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % seq)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def curve_key(value):
    """A Z85 public key given as 40 characters or as a zcert .key file."""
    if len(value) == 40 and not os.path.exists(value):
        return value.encode()
    with open(value) as f:
        for line in f:
            line = line.strip()
            if line.startswith("public-key"):
                return line.split("=", 1)[1].strip().strip('"').encode()
    sys.exit("%s: no public-key" % value)


def curve_secret(path):
    public = secret = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("public-key"):
                public = line.split("=", 1)[1].strip().strip('"').encode()
            if line.startswith("secret-key"):
                secret = line.split("=", 1)[1].strip().strip('"').encode()
    if not public or not secret:
        sys.exit("%s: not a secret certificate (.key_secret)" % path)
    return public, secret


class Feed:
    """One REQ socket; a new one after a timeout (REQ cannot send twice in a row)."""

    def __init__(self, args):
        self.args = args
        self.ctx = zmq.Context.instance()
        self.sock = None

    def _socket(self):
        sock = self.ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        if self.args.server_key:
            public, secret = curve_secret(self.args.client_cert)
            sock.curve_serverkey = curve_key(self.args.server_key)
            sock.curve_publickey = public
            sock.curve_secretkey = secret
        sock.connect(self.args.endpoint)
        return sock

    def ask(self, request, timeout_ms):
        """Sends request, returns the answer; None after timeout_ms (socket renewed)."""
        if self.sock is None:
            self.sock = self._socket()
        self.sock.send(msgpack.packb(request, use_bin_type=True))
        if self.sock.poll(timeout_ms, zmq.POLLIN):
            return msgpack.unpackb(self.sock.recv(), raw=False)
        self.sock.close()
        self.sock = None
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default=os.environ.get(
        "FINESTRA_ROUTER_FEED_ENDPOINT", "tcp://127.0.0.1:5565"))
    parser.add_argument("--feed", required=True, help="the feed name (your system's)")
    parser.add_argument("--cursor-file", help="where the cursor is kept (default FEED.cursor)")
    parser.add_argument("--max", type=int, default=100, help="items per request (1-1000)")
    parser.add_argument("--wait-ms", type=int, default=25000, help="long poll (0-30000)")
    parser.add_argument("--once", action="store_true", help="stop when nothing is waiting")
    parser.add_argument("--accept", action="store_true",
                        help="report every referral.requested item accepted (a target's answer)")
    parser.add_argument("--skip-lost", action="store_true",
                        help="on cursor_expired, go on from what is kept (items are lost!)")
    parser.add_argument("--server-key", help="CURVE: the router's feed public key")
    parser.add_argument("--client-cert", help="CURVE: this reader's .key_secret file")
    args = parser.parse_args()
    if bool(args.server_key) != bool(args.client_cert):
        sys.exit("--server-key and --client-cert go together")
    cursor_file = args.cursor_file or args.feed + ".cursor"
    after = load_cursor(cursor_file)
    feed = Feed(args)
    backoff = 0.5
    while True:
        wait = 0 if args.once else args.wait_ms
        answer = feed.ask({"v": 1, "feed": args.feed, "after": after, "max": args.max,
                           "wait_ms": wait}, wait + 5000)
        if answer is None:
            print("no answer; asking again", file=sys.stderr)
            continue
        if answer["status"] == "error":
            error = answer["error"]
            if error["code"] == "unavailable":
                time.sleep(backoff)
                backoff = min(backoff * 2, 30)
                continue
            if error["code"] == "cursor_expired" and args.skip_lost:
                print("LOST items after %d up to %d (past retention); going on" %
                      (after, answer["next"]), file=sys.stderr)
                after = answer["next"]
                save_cursor(cursor_file, after)
                continue
            sys.exit("refused: %s: %s" % (error["code"], error["message"]))
        backoff = 0.5
        for item in answer["items"]:
            # Process the item: here, print it. A real reader stores it (keyed by item_id)
            print(json.dumps({"seq": item["seq"], "item_id": item["item_id"],
                              "type": item["type"], "time": item["time"],
                              "data": item["data"]}, ensure_ascii=False))
            if args.accept and item["type"] == "referral.requested":
                reply = feed.ask({"v": 1, "feed": args.feed, "op": "transition",
                                  "referral_id": item["referral_id"], "status": "accepted"},
                                 10000)
                if reply and reply["status"] == "error":
                    print("accept %s: %s" % (item["referral_id"], reply["error"]["message"]),
                          file=sys.stderr)
        if answer["next"] != after:
            after = answer["next"]
            save_cursor(cursor_file, after)
        if args.once and not answer["more"]:
            return 0


if __name__ == "__main__":
    sys.exit(main())
