"""The training engine.

Takes training jobs from the Redis queue, trains a policy for each against
the simulator over one long-lived connection, writes every episode's reward
to InfluxDB, the trained policy to MongoDB and the job's progress to
PostgreSQL, and logs its progress to stdout. Between jobs it blocks on the
queue and does nothing else, so the Heartwood watchman can pause it; a
connection to its HTTP port (the web tier calls POST /wake after queueing a
job) is what wakes it again.
"""

import http.server
import json
import logging
import os
import random
import sys
import threading
import time

import influxdb
import psycopg2
import pymongo
import redis

from policy import train
from simclient import SimClient

log = logging.getLogger("trainer")


class Settings:
    """Where the dependencies are; Consul DNS names by default."""

    def __init__(self, env):
        self.queue = env.get("TRAINER_QUEUE", "platform:jobs")
        self.port = int(env.get("TRAINER_PORT", "8100"))
        self.simulator = (env.get("SIMULATOR_HOST", "simulator.service.consul"), int(env.get("SIMULATOR_PORT", "7000")))
        self.redis_host = env.get("REDIS_HOST", "redis.service.consul")
        self.influx_host = env.get("INFLUXDB_HOST", "influxdb.service.consul")
        self.influx_db = env.get("INFLUXDB_DB", "platform")
        self.mongo_url = env.get("MONGODB_URL", "mongodb://mongodb.service.consul:27017/")
        self.pg = {
            "host": env.get("POSTGRES_HOST", "postgres.service.consul"),
            "dbname": env.get("POSTGRES_DB", "platform"),
            "user": env.get("POSTGRES_USER", "platform"),
            "password": read_secret(env.get("POSTGRES_PASSWORD_FILE", "/run/secrets/postgres_password")),
            "connect_timeout": 5,
        }


def read_secret(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


class WakeHandler(http.server.BaseHTTPRequestHandler):
    """GET /healthz and POST /wake. Reaching this port is what wakes a
    paused trainer; the handler itself only acknowledges."""

    def do_GET(self):
        self._reply(200 if self.path == "/healthz" else 404)

    def do_POST(self):
        self._reply(202 if self.path == "/wake" else 404)

    def _reply(self, code):
        body = json.dumps({"ok": code < 300}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        log.info("http %s", fmt % args)


class Engine:
    """Runs jobs one at a time; reconnects to whatever failed."""

    def __init__(self, settings):
        self.s = settings
        self.sim = SimClient(*settings.simulator)
        self.redis = redis.Redis(host=settings.redis_host, socket_connect_timeout=5)
        self.influx = influxdb.InfluxDBClient(host=settings.influx_host, port=8086, database=settings.influx_db, timeout=10)
        self.mongo = pymongo.MongoClient(settings.mongo_url, serverSelectionTimeoutMS=5000)
        self.pg = None

    def connect(self):
        if not self.sim.connected:
            self.sim.connect()
            log.info("connected to the simulator at %s:%d", *self.s.simulator)
        if self.pg is None or self.pg.closed:
            self.pg = psycopg2.connect(**self.s.pg)
            self.pg.autocommit = True
        self.influx.create_database(self.s.influx_db)

    def update_job(self, job_id, status, episodes=None, best=None):
        with self.pg.cursor() as cur:
            cur.execute(
                "UPDATE jobs SET status = %s, episodes = COALESCE(%s, episodes),"
                " best_reward = COALESCE(%s, best_reward), updated_at = now() WHERE id = %s",
                (status, episodes, best, job_id),
            )

    def run_job(self, job):
        job_id, brain, episodes = int(job["job"]), str(job["brain"]), int(job["episodes"])
        log.info("job %d: training brain %s for %d episodes", job_id, brain, episodes)
        self.update_job(job_id, "training", 0)
        started = time.monotonic()

        def on_episode(i, reward, best):
            self.influx.write_points(
                [{"measurement": "episode_reward", "tags": {"brain": brain, "job": str(job_id)},
                  "fields": {"reward": float(reward), "episode": i}}]
            )
            self.update_job(job_id, "training", i, best)
            log.info("job %d brain %s episode %d/%d reward %.0f best %.0f", job_id, brain, i, episodes, reward, best)

        policy, best, _ = train(self.sim, episodes, random.Random(job_id), on_episode)
        self.mongo.get_default_database("platform").policies.replace_one(
            {"_id": brain},
            {"_id": brain, "job": job_id, "kind": "linear", "weights": policy.weights,
             "best_reward": best, "episodes": episodes},
            upsert=True,
        )
        self.update_job(job_id, "trained", episodes, best)
        log.info("job %d: brain %s trained in %.1fs, best reward %.0f", job_id, brain, time.monotonic() - started, best)

    def serve(self, stop):
        idle_logged = False
        while not stop.is_set():
            try:
                self.connect()
                item = self.redis.blpop([self.s.queue], timeout=30)
                if item is None:
                    if not idle_logged:
                        log.info("queue empty: idle")
                        idle_logged = True
                    continue
                idle_logged = False
                job = json.loads(item[1])
                try:
                    self.run_job(job)
                except Exception:
                    log.exception("job %s failed", job.get("job"))
                    self.sim.close()
                    try:
                        self.update_job(int(job["job"]), "failed")
                    except Exception:
                        log.exception("cannot mark job %s failed", job.get("job"))
            except Exception as err:  # a dependency is down: retry
                log.warning("waiting for dependencies: %s", err)
                self.sim.close()
                if self.pg is not None:
                    self.pg.close()
                stop.wait(2)


def main():
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings(os.environ)
    httpd = http.server.ThreadingHTTPServer(("0.0.0.0", settings.port), WakeHandler)
    threading.Thread(target=httpd.serve_forever, name="http", daemon=True).start()
    log.info("training engine: queue %s, wake port %d", settings.queue, settings.port)
    Engine(settings).serve(threading.Event())


if __name__ == "__main__":
    main()
