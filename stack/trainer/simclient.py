"""Client of the simulator's line protocol over one long-lived connection."""

import socket


class SimulatorError(Exception):
    """The simulator answered with an error or hung up."""


class SimClient:
    """A cart-pole environment served by the simulator service.

    The connection is opened once and kept for every episode; connect()
    reopens it after a failure."""

    def __init__(self, host, port, timeout=10.0):
        self.host, self.port, self.timeout = host, port, timeout
        self._sock = None
        self._file = None

    def connect(self):
        self.close()
        self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._file = self._sock.makefile("rwb")
        if self._call("PING") != ["PONG"]:
            raise SimulatorError("simulator did not answer PING")

    def close(self):
        for c in (self._file, self._sock):
            if c is not None:
                try:
                    c.close()
                except OSError:
                    pass
        self._sock = self._file = None

    @property
    def connected(self):
        return self._sock is not None

    def _call(self, line):
        if self._file is None:
            raise SimulatorError("not connected")
        self._file.write(line.encode() + b"\n")
        self._file.flush()
        reply = self._file.readline()
        if not reply:
            self.close()
            raise SimulatorError("simulator closed the connection")
        words = reply.decode("ascii", "replace").split()
        if not words or words[0] == "ERR":
            raise SimulatorError(reply.decode("ascii", "replace").strip())
        return words

    def reset(self, seed=None):
        words = self._call("RESET" if seed is None else f"RESET {int(seed)}")
        return parse_obs(words, 5)

    def step(self, action):
        words = self._call(f"STEP {int(action)}")
        obs = parse_obs(words, 7)
        return obs, float(words[5]), words[6] == "1"


def parse_obs(words, n):
    """The four state values of an OBS reply of n words."""
    if len(words) != n or words[0] != "OBS":
        raise SimulatorError(f"unexpected reply {' '.join(words)[:80]!r}")
    try:
        return tuple(float(w) for w in words[1:5])
    except ValueError as err:
        raise SimulatorError(f"bad number in reply: {err}") from err
