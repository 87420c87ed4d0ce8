"""A minimal RESP2 client for tests: pipelined requests and exact replies, no dependencies."""
import socket
import struct


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def fp32(vector):
    return struct.pack("<%df" % len(vector), *vector)


class RespError(Exception):
    pass


class Client:
    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _fill(self):
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_reply_typed(self):
        """The reply with its RESP type byte (`*`, `%`, `$`, ...), to check reply shapes."""
        while not self.buf:
            self._fill()
        return self.buf[:1].decode(), self.read_reply()

    def read_reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read_reply() for _ in range(n)]
        # RESP3 (after HELLO 3): null, boolean, double, map (as a list of pairs, keys may repeat
        # nowhere but stay ordered), set, verbatim text.
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t == b",":
            return float(rest)
        if t == b"%":
            return [(self.read_reply(), self.read_reply()) for _ in range(int(rest))]
        if t == b"~":
            return [self.read_reply() for _ in range(int(rest))]
        if t == b"=":
            n = int(rest)
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data[4:]
        raise ValueError(f"bad reply line {line!r}")

    def call(self, *args):
        self.sock.sendall(encode(*args))
        return self.read_reply()

    def pipeline(self, commands):
        self.sock.sendall(b"".join(encode(*c) for c in commands))
        return [self.read_reply() for _ in commands]


def text(value):
    """A reply item as text: bulk strings decoded, simple strings and integers as they read."""
    return value.decode() if isinstance(value, bytes) else str(value)


def pairs(reply):
    """A flat key, value, ... reply (VINFO, CONFIG GET, HELLO in RESP2) as a dict of text."""
    return {text(reply[i]): text(reply[i + 1]) for i in range(0, len(reply), 2)}
