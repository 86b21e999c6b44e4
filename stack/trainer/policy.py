"""A small linear policy trained by adaptive hill climbing.

The policy pushes right when the weighted sum of the observation is
positive. Each episode evaluates the best weights so far plus Gaussian
noise; better (or equal) weights are kept and the noise shrinks, worse ones
are dropped and the noise grows. On cart-pole this balances the pole for the
full episode within a few dozen episodes, which is what a training job of a
few seconds needs.
"""

import random


class LinearPolicy:
    """Weights over the observation; action 1 when their dot product is > 0."""

    def __init__(self, weights):
        self.weights = list(weights)

    def act(self, observation):
        total = sum(w * o for w, o in zip(self.weights, observation))
        return 1 if total > 0 else 0


def run_episode(env, policy, seed=None):
    """Plays one episode and returns its total reward.

    env has reset(seed) -> observation and step(action) ->
    (observation, reward, done)."""
    observation = env.reset(seed)
    total, done = 0.0, False
    while not done:
        observation, reward, done = env.step(policy.act(observation))
        total += reward
    return total


def train(env, episodes, rng=None, on_episode=None, size=4):
    """Trains a LinearPolicy for the given number of episodes.

    on_episode(index, reward, best_reward) is called after each episode
    (index from 1). Returns (best policy, best reward, rewards per episode).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    rng = rng or random.Random()
    best = LinearPolicy(rng.uniform(-1, 1) for _ in range(size))
    best_reward = None
    noise = 0.5
    rewards = []
    for i in range(1, episodes + 1):
        if best_reward is None:
            candidate = best
        else:
            candidate = LinearPolicy(w + rng.gauss(0, noise) for w in best.weights)
        reward = run_episode(env, candidate, seed=rng.randrange(2**31))
        rewards.append(reward)
        if best_reward is None or reward >= best_reward:
            best, best_reward = candidate, reward
            noise = max(noise * 0.5, 0.01)
        else:
            noise = min(noise * 2, 2.0)
        if on_episode:
            on_episode(i, reward, best_reward)
    return best, best_reward, rewards
