"""Reward-per-episode graph drawn on the server as inline SVG."""

from html import escape

WIDTH, HEIGHT, PAD = 640, 240, 36


def reward_svg(rewards, max_reward=200.0):
    """An SVG line graph with one <circle class="episode"> per reward.

    Episode i (from 1) is at x proportional to i, reward r at y
    proportional to r over [0, max(max_reward, largest reward)]."""
    top = max([max_reward] + [float(r) for r in rewards]) or 1.0
    n = len(rewards)
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def xy(i, r):
        x = PAD + (inner_w * (i - 1) / (n - 1) if n > 1 else inner_w / 2)
        y = PAD + inner_h * (1 - float(r) / top)
        return round(x, 1), round(y, 1)

    pts = [xy(i, r) for i, r in enumerate(rewards, start=1)]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="reward-graph" class="graph" width="{WIDTH}" height="{HEIGHT}"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="reward per episode">',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fbfaf7" stroke="#ccc"/>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#888"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#888"/>',
        f'<text x="{PAD - 4}" y="{PAD + 4}" text-anchor="end" font-size="11">{top:g}</text>',
        f'<text x="{PAD - 4}" y="{HEIGHT - PAD + 4}" text-anchor="end" font-size="11">0</text>',
        f'<text x="{WIDTH / 2:g}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11">episode (1&#8211;{n})</text>',
    ]
    if n:
        line = " ".join(f"{x},{y}" for x, y in pts)
        parts.append(f'<polyline points="{line}" fill="none" stroke="#2a6f3e" stroke-width="2"/>')
    for i, ((x, y), r) in enumerate(zip(pts, rewards), start=1):
        parts.append(
            f'<circle class="episode" data-episode="{i}" data-reward="{escape(str(r))}" cx="{x}" cy="{y}" r="3"'
            f' fill="#2a6f3e"><title>episode {i}: {escape(str(r))}</title></circle>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
