"""SIGTERM sent the moment latentd prints "ready" shuts it down (regression: the signal used to land between
SIG_IGN and the arming of the dispatch source and was lost, so the shutdown never started)."""
import shutil
import signal
import subprocess
import tempfile

from conftest import LATENTD


def test_sigterm_right_after_ready_stops_the_server():
    for _ in range(8):
        d = tempfile.mkdtemp(prefix="latentdb-sigterm-")
        try:
            p = subprocess.Popen([LATENTD, "--port", "0", "--data-dir", d], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
            assert p.stdout.readline().startswith("latentd ready on")
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=20) == 0
        finally:
            if p.poll() is None:
                p.kill()
            shutil.rmtree(d, ignore_errors=True)
