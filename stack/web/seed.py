"""One-shot job: seeds Consul KV with the cluster-wide defaults.

    python3 seed.py FILE.json

FILE maps keys to string values. Each key is written with cas=0, so only
keys that do not exist yet are created: values an operator changed in
Consul are never overwritten by a redeploy. Consul is retried for a while
(the job may start before the node's agent has a leader).
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request


def seed(addr, values, put=None):
    """Writes every key that is missing; returns (created, kept)."""
    put = put or (lambda key, value: _put(addr, key, value))
    created, kept = [], []
    for key in sorted(values):
        if not isinstance(values[key], str):
            raise ValueError(f"value of {key!r} must be a string")
        (created if put(key, values[key]) else kept).append(key)
    return created, kept


def _put(addr, key, value):
    req = urllib.request.Request(f"http://{addr}/v1/kv/{key}?cas=0", data=value.encode(), method="PUT")
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read().strip() == b"true"


def main(argv):
    if len(argv) != 2:
        print("usage: seed.py FILE.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        values = json.load(f)
    addr = os.environ.get("CONSUL_HTTP_ADDR", "127.0.0.1:8500")
    deadline = time.monotonic() + 120
    while True:
        try:
            created, kept = seed(addr, values)
            break
        except (urllib.error.URLError, OSError) as err:
            if time.monotonic() > deadline:
                print(f"consul at {addr} unreachable: {err}", file=sys.stderr)
                return 1
            time.sleep(2)
    print(f"consul kv: created {created or 'nothing'}, kept {len(kept)} existing keys")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
