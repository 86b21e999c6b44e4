"""The platform's web tier: a Flask app served by Gunicorn.

Every dependency is found by its Consul DNS name (postgres.service.consul,
redis.service.consul, influxdb.service.consul, mongodb.service.consul);
settings and feature flags come from Consul KV (kv.py). The trainer is
poked through the Swarm DNS name of its tasks: a paused trainer is out of
Consul's passing set by design, and the connection to its port is what
wakes it.

    GET  /healthz                 200 when every dependency answers, else 503 naming them
    POST /api/brains              {"name": ...} -> 201 {"id": ...}
    POST /api/brains/<id>/train   -> 202 {"job": ...}
    GET  /api/brains/<id>         {"status", "episodes", "best_reward"}
    GET  /                        brains and their status
    GET  /brains/<id>             one brain with its reward graph and a train button
"""

import json
import logging
import os
import re
import sys
import urllib.request
import uuid

from flask import Flask, abort, jsonify, redirect, render_template_string, request

from graph import reward_svg
from kv import KV, flag, int_setting

log = logging.getLogger("web")

BRAIN_ID = re.compile(r"^[0-9a-f]{12}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS brains (
  id text PRIMARY KEY,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS jobs (
  id bigserial PRIMARY KEY,
  brain_id text NOT NULL REFERENCES brains(id),
  status text NOT NULL,
  episodes integer NOT NULL DEFAULT 0,
  best_reward double precision,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS jobs_brain ON jobs (brain_id, id);
"""


def brain_view(brain, job):
    """The API's view of a brain and its latest job (None: never trained)."""
    if job is None:
        return {"id": brain["id"], "name": brain["name"], "status": "new", "episodes": 0, "best_reward": None}
    return {
        "id": brain["id"],
        "name": brain["name"],
        "status": job["status"],
        "episodes": job["episodes"],
        "best_reward": job["best_reward"],
        "job": job["id"],
    }


class Store:
    """PostgreSQL (brains, jobs), Redis (the job queue), InfluxDB (rewards)
    and MongoDB (policies), connected lazily and reconnected after errors."""

    def __init__(self, env):
        self.env = env
        self.queue = env.get("TRAINER_QUEUE", "platform:jobs")
        self._pg = None
        self._schema = False
        self._redis = None
        self._influx = None
        self._mongo = None

    def _secret(self):
        try:
            with open(self.env.get("POSTGRES_PASSWORD_FILE", "/run/secrets/postgres_password"), encoding="utf-8") as f:
                return f.read().strip()
        except OSError:
            return ""

    def pg(self):
        import psycopg2

        if self._pg is None or self._pg.closed:
            self._pg = psycopg2.connect(
                host=self.env.get("POSTGRES_HOST", "postgres.service.consul"),
                dbname=self.env.get("POSTGRES_DB", "platform"),
                user=self.env.get("POSTGRES_USER", "platform"),
                password=self._secret(),
                connect_timeout=3,
            )
            self._pg.autocommit = True
        if not self._schema:
            with self._pg.cursor() as cur:
                # Several workers start at once: one creates the tables.
                cur.execute("BEGIN; SELECT pg_advisory_xact_lock(4711);" + SCHEMA + "COMMIT;")
            self._schema = True
        return self._pg

    def _query(self, sql, args=()):
        import psycopg2

        # A connection lost to a PostgreSQL restart is retried once on a new one.
        for attempt in (1, 2):
            try:
                with self.pg().cursor() as cur:
                    cur.execute(sql, args)
                    return cur.fetchall() if cur.description else []
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                if self._pg is not None:
                    self._pg.close()
                if attempt == 2:
                    raise
            except Exception:
                if self._pg is not None:
                    self._pg.close()
                raise

    def redis(self):
        import redis

        if self._redis is None:
            self._redis = redis.Redis(host=self.env.get("REDIS_HOST", "redis.service.consul"), socket_timeout=3)
        return self._redis

    def influx(self):
        import influxdb

        if self._influx is None:
            self._influx = influxdb.InfluxDBClient(
                host=self.env.get("INFLUXDB_HOST", "influxdb.service.consul"), port=8086,
                database=self.env.get("INFLUXDB_DB", "platform"), timeout=3,
            )
        return self._influx

    def mongo(self):
        import pymongo

        if self._mongo is None:
            self._mongo = pymongo.MongoClient(
                self.env.get("MONGODB_URL", "mongodb://mongodb.service.consul:27017/"), serverSelectionTimeoutMS=2000
            )
        return self._mongo

    def check(self):
        """Names of the dependencies that do not answer, with the reason."""
        failing = []
        for name, probe in (
            ("postgres", lambda: self._query("SELECT 1")),
            ("redis", lambda: self.redis().ping()),
            ("influxdb", lambda: self.influx().ping()),
            ("mongodb", lambda: self.mongo().admin.command("ping")),
        ):
            try:
                probe()
            except Exception as err:
                failing.append(f"{name}: {str(err).splitlines()[0][:120] if str(err) else type(err).__name__}")
        return failing

    def create_brain(self, name):
        brain_id = uuid.uuid4().hex[:12]
        self._query("INSERT INTO brains (id, name) VALUES (%s, %s)", (brain_id, name))
        return brain_id

    def brain(self, brain_id):
        rows = self._query("SELECT id, name FROM brains WHERE id = %s", (brain_id,))
        if not rows:
            return None, None
        return {"id": rows[0][0], "name": rows[0][1]}, self.latest_job(brain_id)

    def latest_job(self, brain_id):
        rows = self._query(
            "SELECT id, status, episodes, best_reward FROM jobs WHERE brain_id = %s ORDER BY id DESC LIMIT 1", (brain_id,)
        )
        if not rows:
            return None
        r = rows[0]
        return {"id": r[0], "status": r[1], "episodes": r[2], "best_reward": r[3]}

    def brains(self):
        rows = self._query(
            "SELECT b.id, b.name, j.id, j.status, j.episodes, j.best_reward FROM brains b"
            " LEFT JOIN LATERAL (SELECT * FROM jobs WHERE brain_id = b.id ORDER BY id DESC LIMIT 1) j ON true"
            " ORDER BY b.created_at DESC LIMIT 200"
        )
        out = []
        for r in rows:
            job = None if r[2] is None else {"id": r[2], "status": r[3], "episodes": r[4], "best_reward": r[5]}
            out.append(brain_view({"id": r[0], "name": r[1]}, job))
        return out

    def enqueue(self, brain_id, episodes):
        job_id = self._query(
            "INSERT INTO jobs (brain_id, status) VALUES (%s, 'queued') RETURNING id", (brain_id,)
        )[0][0]
        self.redis().rpush(self.queue, json.dumps({"job": job_id, "brain": brain_id, "episodes": episodes}))
        return job_id

    def rewards(self, brain_id, job_id):
        # Both values are validated (hex id, integer job) before they reach the query.
        q = (
            'SELECT "reward" FROM "episode_reward" WHERE "brain" = \'%s\' AND "job" = \'%d\' ORDER BY time'
            % (brain_id, int(job_id))
        )
        return [p["reward"] for p in self.influx().query(q).get_points()]


def wake_trainer(env):
    """Connects to the trainer's port: this is what wakes a paused trainer."""
    url = "http://%s:%s/wake" % (env.get("TRAINER_WAKE_HOST", "tasks.trainer"), env.get("TRAINER_PORT", "8100"))
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=30) as r:
            return r.status
    except Exception as err:
        log.warning("trainer wake request to %s failed: %s (the job stays queued)", url, err)
        return None


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}.status{font-weight:bold}</style>
</head><body><h1>{{ title }}</h1>{{ body|safe }}</body></html>"""

INDEX = """<form method="post" action="/brains"><input name="name" placeholder="new brain" required>
<button type="submit">Create</button></form>
<table id="brains"><tr><th>brain</th><th>status</th><th>episodes</th><th>best reward</th></tr>
{% for b in brains %}<tr><td><a href="/brains/{{ b.id }}">{{ b.name }}</a></td>
<td class="status">{{ b.status }}</td><td>{{ b.episodes }}</td><td>{{ b.best_reward if b.best_reward is not none else "" }}</td></tr>
{% endfor %}</table>"""

BRAIN = """<p><a href="/">all brains</a></p><h2>{{ b.name }}</h2>
<p>status <span class="status" id="status">{{ b.status }}</span>, {{ b.episodes }} episodes,
best reward {{ b.best_reward if b.best_reward is not none else "-" }}</p>
{% if graph %}<h3>reward per episode</h3>{{ graph|safe }}{% endif %}
{% if training %}<form method="post" action="/brains/{{ b.id }}/train"><button type="submit" id="train">Train again</button></form>
{% else %}<p>Training is switched off.</p>{% endif %}"""


def create_app(store=None, kv=None, waker=None, env=None):
    """The Flask app; the arguments replace the real dependencies in tests."""
    env = os.environ if env is None else env
    store = store or Store(env)
    kv = kv or KV(env.get("CONSUL_HTTP_ADDR", "127.0.0.1:8500"), env.get("PLATFORM_KV_PREFIX", "platform/"))
    waker = waker or (lambda: wake_trainer(env))
    app = Flask(__name__)

    def page(body_tpl, **ctx):
        title = kv.values()["settings/title"]
        return render_template_string(PAGE, title=title, body=render_template_string(body_tpl, **ctx))

    def get_brain(brain_id):
        if not BRAIN_ID.match(brain_id):
            abort(404)
        brain, job = store.brain(brain_id)
        if brain is None:
            abort(404)
        return brain, job

    def train(brain_id):
        values = kv.values()
        if not flag(values, "training"):
            return None
        get_brain(brain_id)
        job = store.enqueue(brain_id, int_setting(values, "episodes", 1, 500))
        log.info("brain %s: job %d queued", brain_id, job)
        waker()
        return job

    @app.get("/healthz")
    def healthz():
        failing = store.check()
        if failing:
            return jsonify(status="unavailable", failing=failing), 503
        return jsonify(status="ok")

    @app.post("/api/brains")
    def api_create():
        data = request.get_json(silent=True) or {}
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            return jsonify(error="name must be a non-empty string of at most 100 characters"), 400
        brain_id = store.create_brain(name.strip())
        log.info("brain %s created (%r)", brain_id, name.strip())
        return jsonify(id=brain_id), 201

    @app.post("/api/brains/<brain_id>/train")
    def api_train(brain_id):
        job = train(brain_id)
        if job is None:
            return jsonify(error="training is switched off"), 503
        return jsonify(job=job), 202

    @app.get("/api/brains/<brain_id>")
    def api_brain(brain_id):
        return jsonify(brain_view(*get_brain(brain_id)))

    @app.get("/")
    def index():
        return page(INDEX, brains=store.brains())

    @app.post("/brains")
    def create_form():
        name = request.form.get("name", "").strip()
        if not name or len(name) > 100:
            abort(400)
        return redirect("/brains/" + store.create_brain(name), code=303)

    @app.get("/brains/<brain_id>")
    def brain_page(brain_id):
        brain, job = get_brain(brain_id)
        values = kv.values()
        graph = None
        if job is not None and flag(values, "graph"):
            graph = reward_svg(store.rewards(brain_id, job["id"]))
        return page(BRAIN, b=brain_view(brain, job), graph=graph, training=flag(values, "training"))

    @app.post("/brains/<brain_id>/train")
    def train_form(brain_id):
        if train(brain_id) is None:
            abort(503)
        return redirect("/brains/" + brain_id, code=303)

    return app


logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
