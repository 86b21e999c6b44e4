"""Settings and feature flags from Consul KV.

Keys live under a prefix (default "platform/"): settings/<name> and
flags/<name>. They are read with one recursive GET and cached for a few
seconds, so a change in Consul reaches every worker quickly without a KV
request per page. When Consul cannot be reached the last values (or the
defaults) stay in effect.
"""

import base64
import json
import threading
import time
import urllib.request

DEFAULTS = {
    "settings/episodes": "30",
    "settings/title": "Heartwood training platform",
    "flags/training": "on",
    "flags/graph": "on",
}

TRUE_WORDS = {"on", "true", "yes", "1", "enabled"}
FALSE_WORDS = {"off", "false", "no", "0", "disabled"}


def parse_kv_listing(body, prefix):
    """Maps key (without prefix) -> value from a /v1/kv/<prefix>?recurse reply."""
    out = {}
    for entry in json.loads(body or b"[]"):
        key = entry.get("Key", "")
        if not key.startswith(prefix) or entry.get("Value") is None:
            continue
        out[key[len(prefix):]] = base64.b64decode(entry["Value"]).decode("utf-8", "replace").strip()
    return out


def flag(values, name):
    """A feature flag's state; unknown words count as off."""
    word = values.get("flags/" + name, DEFAULTS.get("flags/" + name, "off")).lower()
    if word in TRUE_WORDS:
        return True
    return False


def int_setting(values, name, low, high):
    """An integer setting clamped to [low, high]; the default when malformed."""
    key = "settings/" + name
    try:
        v = int(values.get(key, DEFAULTS[key]))
    except ValueError:
        v = int(DEFAULTS[key])
    return max(low, min(high, v))


class KV:
    """Cached view of the platform's keys in Consul."""

    def __init__(self, addr, prefix="platform/", ttl=5.0, fetch=None):
        self.url = f"http://{addr}/v1/kv/{prefix}?recurse"
        self.prefix = prefix
        self.ttl = ttl
        self._fetch = fetch or self._http
        self._lock = threading.Lock()
        self._values = dict(DEFAULTS)
        self._at = None
        self.error = None

    def _http(self):
        try:
            with urllib.request.urlopen(self.url, timeout=2) as r:
                return r.read()
        except urllib.error.HTTPError as err:
            if err.code == 404:  # no keys yet
                return b"[]"
            raise

    def values(self, now=None):
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._at is None or now - self._at >= self.ttl:
                self._at = now
                try:
                    fresh = dict(DEFAULTS)
                    fresh.update(parse_kv_listing(self._fetch(), self.prefix))
                    self._values, self.error = fresh, None
                except Exception as err:  # keep the last values
                    self.error = str(err)
            return dict(self._values)
