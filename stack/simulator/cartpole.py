"""Cart-pole physics: a pole hinged on a cart that moves along a track.

The state is (x, x_dot, theta, theta_dot): cart position (m) and velocity
(m/s), pole angle from vertical (rad) and angular velocity (rad/s). Each
step applies a fixed force to the left (action 0) or right (action 1) and
integrates the equations of motion with explicit Euler over TAU seconds.
An episode ends when the pole falls past THETA_LIMIT, the cart leaves the
track (X_LIMIT) or MAX_STEPS steps were survived; every step survived is
worth a reward of 1.
"""

import math
import random

GRAVITY = 9.8
CART_MASS = 1.0
POLE_MASS = 0.1
POLE_HALF_LENGTH = 0.5
FORCE = 10.0
TAU = 0.02
THETA_LIMIT = 12 * 2 * math.pi / 360
X_LIMIT = 2.4
MAX_STEPS = 200


class CartPole:
    """One cart-pole episode at a time."""

    def __init__(self, seed=None):
        self._rng = random.Random(seed)
        self.state = (0.0, 0.0, 0.0, 0.0)
        self.steps = 0
        self.done = True

    def reset(self, seed=None):
        """Start an episode from a small random state and return it."""
        if seed is not None:
            self._rng.seed(seed)
        self.state = tuple(self._rng.uniform(-0.05, 0.05) for _ in range(4))
        self.steps = 0
        self.done = False
        return self.state

    def step(self, action):
        """Apply action 0 (push left) or 1 (push right).

        Returns (state, reward, done). Stepping a finished episode is an
        error: the caller must reset first.
        """
        if action not in (0, 1):
            raise ValueError(f"action must be 0 or 1, got {action!r}")
        if self.done:
            raise RuntimeError("episode is over: reset first")
        x, x_dot, theta, theta_dot = self.state
        force = FORCE if action == 1 else -FORCE
        total_mass = CART_MASS + POLE_MASS
        polemass_length = POLE_MASS * POLE_HALF_LENGTH
        cos, sin = math.cos(theta), math.sin(theta)
        temp = (force + polemass_length * theta_dot * theta_dot * sin) / total_mass
        theta_acc = (GRAVITY * sin - cos * temp) / (
            POLE_HALF_LENGTH * (4.0 / 3.0 - POLE_MASS * cos * cos / total_mass)
        )
        x_acc = temp - polemass_length * theta_acc * cos / total_mass
        x += TAU * x_dot
        x_dot += TAU * x_acc
        theta += TAU * theta_dot
        theta_dot += TAU * theta_acc
        self.state = (x, x_dot, theta, theta_dot)
        self.steps += 1
        fell = abs(x) > X_LIMIT or abs(theta) > THETA_LIMIT
        self.done = fell or self.steps >= MAX_STEPS
        return self.state, 1.0, self.done
