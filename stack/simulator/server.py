"""The simulator service: cart-pole episodes behind a line protocol.

One TCP connection is one client with its own cart-pole. Requests and
replies are single lines of ASCII words:

    PING            -> PONG
    RESET [seed]    -> OBS x x_dot theta theta_dot
    STEP 0|1        -> OBS x x_dot theta theta_dot reward done(0|1)
    QUIT            -> BYE (and the server closes the connection)

Anything else gets "ERR <reason>" and the connection stays usable.
"""

import logging
import os
import socketserver
import sys

from cartpole import CartPole

log = logging.getLogger("simulator")


def _fmt(values):
    return " ".join(f"{v:.6f}" for v in values)


def handle_line(sim, line):
    """Answers one request line for the client's simulator.

    Returns (reply, keep_open)."""
    words = line.split()
    if not words:
        return "ERR empty request", True
    cmd, args = words[0].upper(), words[1:]
    try:
        if cmd == "PING" and not args:
            return "PONG", True
        if cmd == "RESET" and len(args) <= 1:
            seed = int(args[0]) if args else None
            return "OBS " + _fmt(sim.reset(seed)), True
        if cmd == "STEP" and len(args) == 1:
            state, reward, done = sim.step(int(args[0]))
            return f"OBS {_fmt(state)} {reward:g} {int(done)}", True
        if cmd == "QUIT" and not args:
            return "BYE", False
    except (ValueError, RuntimeError) as err:
        return f"ERR {err}", True
    return f"ERR unknown request {line.strip()[:64]!r}", True


class Handler(socketserver.StreamRequestHandler):
    """Serves one client connection until it quits or hangs up."""

    def handle(self):
        peer = "%s:%d" % self.client_address[:2]
        log.info("client %s connected", peer)
        sim = CartPole()
        for raw in self.rfile:
            if len(raw) > 256:
                self.wfile.write(b"ERR request too long\n")
                continue
            reply, keep = handle_line(sim, raw.decode("ascii", "replace"))
            self.wfile.write(reply.encode() + b"\n")
            if not keep:
                break
        log.info("client %s left", peer)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    port = int(os.environ.get("SIMULATOR_PORT", "7000"))
    with Server(("0.0.0.0", port), Handler) as server:
        log.info("cart-pole simulator listening on port %d", port)
        server.serve_forever()


if __name__ == "__main__":
    main()
