"""What tools/stress.py and tools/churn.py share: starting latentd on a loopback port with a temporary data
directory, and stopping it (SIGTERM, then SIGKILL after 60 s) with the directory removed."""
import shutil
import signal
import subprocess


def start(latentd, data_dir, *extra):
    """Starts latentd on a free loopback port; returns (process, port)."""
    proc = subprocess.Popen([latentd, "--port", "0", "--data-dir", data_dir, "--log-level", "warning", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("latentd ready on"):
        raise SystemExit(f"latentd did not start: {line!r} {proc.stderr.read()!r}")
    return proc, int(line.strip().rsplit(":", 1)[1])


def stop_and_clean(proc, data_dir):
    """Stops the process this tool started (by its handle) and removes its data directory."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    shutil.rmtree(data_dir, ignore_errors=True)
