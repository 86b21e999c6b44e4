import random
import socket
import threading
import unittest

from policy import LinearPolicy, run_episode, train
from simclient import SimClient, SimulatorError, parse_obs


class SignEnv:
    """Reward 1 per step while the action matches the sign of obs[0];
    the episode ends at the first mismatch or after 50 steps."""

    def __init__(self):
        self.rng = random.Random(0)

    def reset(self, seed=None):
        self.rng.seed(seed)
        self.t = 0
        self.obs = (self.rng.uniform(-1, 1), self.rng.uniform(-1, 1))
        return self.obs

    def step(self, action):
        ok = action == (1 if self.obs[0] > 0 else 0)
        self.t += 1
        self.obs = (self.rng.uniform(-1, 1), self.rng.uniform(-1, 1))
        return self.obs, (1.0 if ok else 0.0), (not ok or self.t >= 50)


class PolicyTest(unittest.TestCase):
    def test_act(self):
        p = LinearPolicy([1.0, -2.0])
        self.assertEqual(p.act((3, 1)), 1)
        self.assertEqual(p.act((1, 1)), 0)

    def test_run_episode_perfect_policy(self):
        self.assertEqual(run_episode(SignEnv(), LinearPolicy([1, 0]), seed=4), 50)

    def test_train_learns_and_reports_each_episode(self):
        seen = []
        best, best_reward, rewards = train(SignEnv(), 40, random.Random(1), lambda i, r, b: seen.append((i, r, b)), size=2)
        self.assertEqual(len(rewards), 40)
        self.assertEqual([s[0] for s in seen], list(range(1, 41)))
        self.assertEqual(best_reward, max(rewards))
        self.assertEqual([s[2] for s in seen], [max(rewards[: i + 1]) for i in range(40)])
        self.assertGreaterEqual(best_reward, 20)
        self.assertGreater(best.weights[0], abs(best.weights[1]))

    def test_train_rejects_zero_episodes(self):
        with self.assertRaises(ValueError):
            train(SignEnv(), 0)


class SimClientTest(unittest.TestCase):
    def serve(self, replies):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        got = []

        def run():
            conn, _ = srv.accept()
            f = conn.makefile("rwb")
            for r in replies:
                line = f.readline()
                if not line:
                    break
                got.append(line.decode().strip())
                f.write(r.encode() + b"\n")
                f.flush()
            conn.close()
            srv.close()

        t = threading.Thread(target=run)
        t.start()
        self.addCleanup(t.join)
        return srv.getsockname()[1], got

    def test_episode_over_the_protocol(self):
        port, got = self.serve(["PONG", "OBS 0 0 0.01 0", "OBS 0.1 0.2 0.3 0.4 1 0", "OBS 0 0 0 0 1 1"])
        c = SimClient("127.0.0.1", port)
        c.connect()
        self.assertEqual(c.reset(9), (0.0, 0.0, 0.01, 0.0))
        self.assertEqual(c.step(1), ((0.1, 0.2, 0.3, 0.4), 1.0, False))
        self.assertEqual(c.step(0)[2], True)
        self.assertEqual(got, ["PING", "RESET 9", "STEP 1", "STEP 0"])
        c.close()

    def test_error_reply_and_hangup(self):
        port, _ = self.serve(["PONG", "ERR episode is over: reset first"])
        c = SimClient("127.0.0.1", port)
        c.connect()
        with self.assertRaisesRegex(SimulatorError, "episode is over"):
            c.step(0)
        with self.assertRaisesRegex(SimulatorError, "closed"):
            c.step(0)
        self.assertFalse(c.connected)

    def test_parse_obs(self):
        with self.assertRaises(SimulatorError):
            parse_obs(["OBS", "1", "2"], 5)
        with self.assertRaises(SimulatorError):
            parse_obs(["OBS", "a", "2", "3", "4"], 5)


if __name__ == "__main__":
    unittest.main()
