"""First contact on a stock machine (issue 15): make run needs no Python, --version, the configuration
file, make install and the systemd unit."""
import os
import re
import shutil
import signal
import subprocess

from conftest import LATENTCTL, LATENTD, ROOT, Server
from resp_client import Client


def make(*args, env=None, timeout=600):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_make_run_involves_no_python():
    dry = make("-n", "run", "PYTHON=/nonexistent/python3")
    assert dry.returncode == 0, dry.stderr
    assert not re.search(r"python|pip|venv|pytest", dry.stdout), dry.stdout


def test_server_dependency_step_works_without_python_packages(tmp_path):
    # A clean environment whose only python3 (if any) is the system one, without pytest or redis-py.
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path)}
    out = make("server-deps", "PYTHON=/nonexistent/python3", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    s = Server(str(tmp_path / "data")).start()
    try:
        assert Client(s.port).call("PING") == "PONG"
    finally:
        s.kill()


def test_version_of_both_binaries():
    for binary, name in [(LATENTD, "latentd"), (LATENTCTL, "latentctl")]:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0
        lines = out.stdout.splitlines()
        assert re.match(rf"{name} \d+\.\d+\.\d+$", lines[0]), out.stdout
        fields = dict(line.split(": ", 1) for line in lines[1:])
        assert set(fields) == {"git commit", "built", "rocksdb", "distance kernels"}
        # `make build` wrote the build facts (an unknown commit means the header was not generated).
        assert re.match(r"[0-9a-f]{12}", fields["git commit"]), out.stdout
        assert re.match(r"\d+\.\d+\.\d+$", fields["rocksdb"]), out.stdout


def test_config_file_flags_override_and_info(tmp_path):
    conf = tmp_path / "latentd.conf"
    conf.write_text(f'# test\nport 1\ndir "{tmp_path / "data"}"\nmaxclients 77\nquery-cache-mb 3\n')
    s = Server(str(tmp_path / "flagdir"), "--config", str(conf))
    s.start()
    try:
        c = Client(s.port)
        config = c.call("CONFIG", "GET", "*")
        values = dict(zip(config[::2], config[1::2]))
        assert values[b"maxclients"] == b"77" and values[b"query-cache-mb"] == b"3"
        assert values[b"port"] == b"0", "--port 0 from the command line overrides the file"
        assert values[b"dir"] == str(tmp_path / "flagdir").encode(), "--data-dir overrides dir"
        assert c.call("CONFIG", "SET", "maxclients", "78") == "OK"
        assert c.call("CONFIG", "REWRITE") == "OK"
        assert "maxclients 78" in conf.read_text()
        info = c.call("INFO", "server").decode()
        for field in ("latentdb_version:", "latentdb_git_sha1:", "rocksdb_version:", "distance_kernels:",
                      f"config_file:{conf}"):
            assert field in info, info
    finally:
        s.stop()


def test_startup_logs_the_effective_configuration_without_the_password(tmp_path):
    p = subprocess.Popen([LATENTD, "--port", "0", "--data-dir", str(tmp_path / "d"), "--requirepass", "s3cret-pw",
                          "--max-clients", "55", "--slowlog-max-len", "7"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().startswith("latentd ready on")
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    starting = [line for line in err.splitlines() if line.endswith("latentd starting")]
    assert len(starting) == 1, err
    for field in ("maxclients=55", "slowlog-max-len=7", "appendfsync=everysec", "requirepass=(set)", "distance-kernels="):
        assert field in starting[0], starting[0]
    assert "s3cret-pw" not in err


def test_bad_config_file_is_refused_with_its_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("port 7379\n\nmaxclients lots\n")
    out = subprocess.run([LATENTD, "--config", str(conf)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert f"{conf}:3: maxclients must be an integer" in out.stderr, out.stderr


def test_make_install_and_the_systemd_unit(tmp_path):
    prefix = tmp_path / "prefix"
    out = make("install-files", f"PREFIX={prefix}", f"BUILD_DIR={os.path.dirname(LATENTD)}")
    assert out.returncode == 0, out.stderr
    for b in ("latentd", "latentctl"):
        assert os.access(prefix / "bin" / b, os.X_OK)
    unit = (prefix / "share/latentdb/latentd.service").read_text()
    exec_start = re.search(r"^ExecStart=(.+)$", unit, re.M).group(1).split()
    assert exec_start[0] == str(prefix / "bin/latentd")
    assert "KillSignal=SIGTERM" in unit and "StateDirectory=latentdb" in unit
    if shutil.which("systemd-analyze"):
        # systemd's own check of the unit's syntax (the user and paths exist only on a real install).
        check = subprocess.run(["systemd-analyze", "verify", str(prefix / "share/latentdb/latentd.service")],
                               capture_output=True, text=True, timeout=60)
        assert "Unknown key" not in check.stderr and "Invalid" not in check.stderr, check.stderr
    # Run what systemd would run, with the installed example configuration in place of /etc/latentdb's,
    # and stop it as systemd does: SIGTERM, expecting a clean exit.
    args = [a.replace("/etc/latentdb/latentd.conf", str(prefix / "share/latentdb/latentd.conf"))
             .replace("/var/lib/latentdb", str(tmp_path / "state")) for a in exec_start]
    proc = subprocess.Popen(args + ["--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("latentd ready on"), proc.stderr.read()
        port = int(line.strip().rsplit(":", 1)[1])
        assert Client(port).call("PING") == "PONG"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
