import base64
import json
import re
import unittest

from app import brain_view, create_app
from graph import reward_svg
from kv import KV, flag, int_setting, parse_kv_listing
from seed import seed


class FakeStore:
    def __init__(self):
        self.brains_, self.jobs, self.queue, self.failing = {}, [], [], []

    def check(self):
        return self.failing

    def create_brain(self, name):
        bid = "%012x" % (len(self.brains_) + 1)
        self.brains_[bid] = {"id": bid, "name": name}
        return bid

    def latest_job(self, bid):
        js = [j for j in self.jobs if j["brain"] == bid]
        return js[-1] if js else None

    def brain(self, bid):
        return self.brains_.get(bid), self.latest_job(bid)

    def brains(self):
        return [brain_view(b, self.latest_job(i)) for i, b in self.brains_.items()]

    def enqueue(self, bid, episodes):
        job = {"id": len(self.jobs) + 1, "brain": bid, "status": "queued", "episodes": 0, "best_reward": None}
        self.jobs.append(job)
        self.queue.append((job["id"], episodes))
        return job["id"]

    def rewards(self, bid, job):
        return [10.0, 50.0, 200.0]


def listing(pairs):
    return json.dumps([{"Key": k, "Value": base64.b64encode(v.encode()).decode()} for k, v in pairs.items()]).encode()


class AppTest(unittest.TestCase):
    def setUp(self):
        self.store, self.wakes = FakeStore(), []
        self.kv_values = {"platform/settings/episodes": "12"}
        kv = KV("x", fetch=lambda: listing(self.kv_values), ttl=0)
        self.app = create_app(store=self.store, kv=kv, waker=lambda: self.wakes.append(1), env={})
        self.c = self.app.test_client()

    def test_health(self):
        self.assertEqual(self.c.get("/healthz").status_code, 200)
        self.store.failing = ["redis: refused"]
        r = self.c.get("/healthz")
        self.assertEqual(r.status_code, 503)
        self.assertEqual(r.get_json()["failing"], ["redis: refused"])

    def test_brain_lifecycle(self):
        r = self.c.post("/api/brains", json={"name": "pole"})
        self.assertEqual(r.status_code, 201)
        bid = r.get_json()["id"]
        self.assertEqual(self.c.get(f"/api/brains/{bid}").get_json()["status"], "new")
        r = self.c.post(f"/api/brains/{bid}/train")
        self.assertEqual(r.status_code, 202)
        self.assertEqual(self.store.queue, [(1, 12)])
        self.assertEqual(self.wakes, [1])
        got = self.c.get(f"/api/brains/{bid}").get_json()
        self.assertEqual((got["status"], got["episodes"], got["best_reward"]), ("queued", 0, None))

    def test_bad_requests(self):
        for body in ({}, {"name": ""}, {"name": 5}, {"name": "x" * 101}):
            self.assertEqual(self.c.post("/api/brains", json=body).status_code, 400, body)
        self.assertEqual(self.c.get("/api/brains/nothex").status_code, 404)
        self.assertEqual(self.c.get("/api/brains/000000000009").status_code, 404)
        self.assertEqual(self.c.post("/api/brains/000000000009/train").status_code, 404)

    def test_training_flag_off(self):
        bid = self.c.post("/api/brains", json={"name": "a"}).get_json()["id"]
        self.kv_values["platform/flags/training"] = "off"
        self.assertEqual(self.c.post(f"/api/brains/{bid}/train").status_code, 503)
        self.assertEqual(self.store.queue, [])

    def test_pages(self):
        bid = self.c.post("/api/brains", json={"name": "<b>pole</b>"}).get_json()["id"]
        html = self.c.get("/").get_data(as_text=True)
        self.assertIn("&lt;b&gt;pole&lt;/b&gt;", html)
        self.assertNotIn("<b>pole</b>", html)
        self.c.post(f"/brains/{bid}/train")
        html = self.c.get(f"/brains/{bid}").get_data(as_text=True)
        self.assertEqual(len(re.findall(r'<circle class="episode"', html)), 3)
        self.assertNotRegex(html, r'(src|href)="(https?:)?//')
        r = self.c.post("/brains", data={"name": "form"})
        self.assertEqual(r.status_code, 303)


class GraphTest(unittest.TestCase):
    def test_points(self):
        svg = reward_svg([0, 100, 200])
        pts = re.findall(r'cx="([\d.]+)" cy="([\d.]+)"', svg)
        self.assertEqual(len(pts), 3)
        (x1, y1), (x2, y2), (x3, y3) = [(float(a), float(b)) for a, b in pts]
        self.assertLess(x1, x2)
        self.assertLess(x2, x3)
        self.assertGreater(y1, y2)
        self.assertGreater(y2, y3)
        self.assertAlmostEqual(y2, (y1 + y3) / 2)

    def test_empty_and_single(self):
        self.assertNotIn("<circle", reward_svg([]))
        self.assertEqual(reward_svg([5]).count("<circle"), 1)


class KVTest(unittest.TestCase):
    def test_listing_and_flags(self):
        body = listing({"platform/flags/graph": "OFF", "platform/settings/episodes": "x", "other/key": "1"})
        values = parse_kv_listing(body, "platform/")
        self.assertEqual(values, {"flags/graph": "OFF", "settings/episodes": "x"})
        self.assertFalse(flag(values, "graph"))
        self.assertTrue(flag(values, "training"))
        self.assertEqual(int_setting(values, "episodes", 1, 500), 30)
        self.assertEqual(int_setting({"settings/episodes": "9000"}, "episodes", 1, 500), 500)

    def test_cache_keeps_last_values_when_consul_fails(self):
        calls = []

        def fetch():
            calls.append(1)
            if len(calls) > 1:
                raise OSError("refused")
            return listing({"platform/settings/title": "T"})

        kv = KV("x", fetch=fetch, ttl=5)
        self.assertEqual(kv.values(now=0)["settings/title"], "T")
        self.assertEqual(kv.values(now=1)["settings/title"], "T")
        self.assertEqual(len(calls), 1)
        self.assertEqual(kv.values(now=10)["settings/title"], "T")
        self.assertEqual(kv.error, "refused")


class SeedTest(unittest.TestCase):
    def test_only_missing_keys(self):
        existing = {"a"}
        created, kept = seed("x", {"a": "1", "b": "2"}, put=lambda k, v: k not in existing)
        self.assertEqual((created, kept), (["b"], ["a"]))
        with self.assertRaises(ValueError):
            seed("x", {"a": 1}, put=lambda k, v: True)


if __name__ == "__main__":
    unittest.main()
