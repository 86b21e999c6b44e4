import math
import unittest

import cartpole
from server import handle_line


class CartPoleTest(unittest.TestCase):
    def test_reset_is_small_and_seeded(self):
        a, b = cartpole.CartPole(), cartpole.CartPole()
        self.assertEqual(a.reset(7), b.reset(7))
        self.assertTrue(all(abs(v) <= 0.05 for v in a.state))

    def test_push_right_accelerates_cart_right_and_pole_left(self):
        sim = cartpole.CartPole()
        sim.reset(1)
        sim.state = (0.0, 0.0, 0.0, 0.0)
        state, reward, done = sim.step(1)
        x, x_dot, theta, theta_dot = state
        self.assertEqual(x, 0.0)  # explicit Euler: position moves next step
        self.assertGreater(x_dot, 0)
        self.assertLess(theta_dot, 0)
        self.assertEqual(reward, 1.0)
        self.assertFalse(done)
        # Analytic first step from rest: x_acc = F/M - m*l*theta_acc/M.
        m, M, l, F = cartpole.POLE_MASS, cartpole.CART_MASS + cartpole.POLE_MASS, cartpole.POLE_HALF_LENGTH, cartpole.FORCE
        theta_acc = -(F / M) / (l * (4 / 3 - m / M))
        self.assertAlmostEqual(theta_dot, cartpole.TAU * theta_acc)
        self.assertAlmostEqual(x_dot, cartpole.TAU * (F / M - m * l * theta_acc / M))

    def test_constant_push_ends_episode_early(self):
        sim = cartpole.CartPole()
        sim.reset(3)
        steps, done = 0, False
        while not done:
            _, _, done = sim.step(1)
            steps += 1
        self.assertLess(steps, cartpole.MAX_STEPS)
        x, _, theta, _ = sim.state
        self.assertTrue(abs(theta) > cartpole.THETA_LIMIT or abs(x) > cartpole.X_LIMIT)

    def test_balancing_controller_survives_max_steps(self):
        sim = cartpole.CartPole()
        state, done, steps = sim.reset(5), False, 0
        while not done:
            x, x_dot, theta, theta_dot = state
            state, _, done = sim.step(1 if theta + 0.5 * theta_dot + 0.01 * x + 0.1 * x_dot > 0 else 0)
            steps += 1
        self.assertEqual(steps, cartpole.MAX_STEPS)

    def test_step_after_done_and_bad_action(self):
        sim = cartpole.CartPole()
        with self.assertRaises(RuntimeError):
            sim.step(0)
        sim.reset()
        with self.assertRaises(ValueError):
            sim.step(2)


class ProtocolTest(unittest.TestCase):
    def test_requests(self):
        sim = cartpole.CartPole()
        cases = [
            ("PING", "PONG", True),
            ("", "ERR empty request", True),
            ("STEP 0", "ERR episode is over: reset first", True),
            ("STEP x", "ERR invalid literal", True),
            ("JUMP", "ERR unknown request", True),
            ("QUIT", "BYE", False),
        ]
        for line, want, keep in cases:
            with self.subTest(line=line):
                reply, k = handle_line(sim, line)
                self.assertTrue(reply.startswith(want), reply)
                self.assertEqual(k, keep)

    def test_reset_and_step_replies_parse(self):
        sim = cartpole.CartPole()
        reply, _ = handle_line(sim, "RESET 11\n")
        words = reply.split()
        self.assertEqual(words[0], "OBS")
        self.assertEqual(len(words), 5)
        reply, _ = handle_line(sim, "step 1")
        words = reply.split()
        self.assertEqual(len(words), 7)
        self.assertEqual(words[5], "1")
        self.assertIn(words[6], ("0", "1"))
        self.assertTrue(all(math.isfinite(float(w)) for w in words[1:5]))


if __name__ == "__main__":
    unittest.main()
