"""Starts the built latentd on an ephemeral port with a temporary data directory."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LATENTD = os.environ.get("LATENTD_BIN", os.path.join(ROOT, ".build", "debug", "latentd"))
LATENTCTL = os.environ.get("LATENTCTL_BIN", os.path.join(ROOT, ".build", "debug", "latentctl"))


class Server:
    """One latentd process; restartable on the same data directory."""

    def __init__(self, data_dir, *extra):
        self.data_dir = data_dir
        self.extra = list(extra)
        self.proc = None
        self.port = None

    def args_for_test(self):
        """The command line `start` runs (for tests that run latentd to completion themselves)."""
        return [LATENTD, "--port", "0", "--data-dir", self.data_dir, "--log-level", "warning"] + self.extra

    def start(self, timeout=30):
        args = self.args_for_test()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + timeout
        line = self.proc.stdout.readline()
        if not line.startswith("latentd ready on"):
            err = self.proc.stderr.read()
            raise RuntimeError(f"latentd did not start: {line!r} {err!r}")
        self.port = int(line.strip().rsplit(":", 1)[1])
        assert time.time() < deadline
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self):
        self.kill(signal.SIGTERM)

    def cli(self, *args, password=None):
        cmd = ["redis-cli", "-p", str(self.port)]
        if password:
            cmd += ["-a", password, "--no-auth-warning"]
        out = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=60)
        return out.stdout.rstrip("\n")

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return s


def read_until_closed(sock, timeout=10):
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def read_exactly(sock, n, timeout=10):
    sock.settimeout(timeout)
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def data_dir():
    d = tempfile.mkdtemp(prefix="latentd-it-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server(data_dir):
    s = Server(data_dir).start()
    yield s
    s.kill()


def wait_for(predicate, what="condition", timeout=60):
    """Polls `predicate` until it holds, failing after `timeout` seconds with `what` in the message."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
