"""--metrics-port (issue #13): latentd's /metrics passes `promtool check metrics`, carries the per-command,
per-collection and server series, and a real Prometheus (Debian's, started here on a loopback port with
its own scrape config) scrapes it and answers queries over latentd's series."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from conftest import Server
from resp_client import Client

PROMETHEUS, PROMTOOL = shutil.which("prometheus"), shutil.which("promtool")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def series(text):
    """{'name{labels}': value} of the exposition's samples."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


@pytest.fixture
def metrics_server(data_dir):
    s = Server(data_dir, "--metrics-port", "0").start()
    line = s.proc.stdout.readline()
    assert line.startswith("latentd metrics on http://127.0.0.1:"), line
    s.metrics_url = line.split(" on ", 1)[1].strip()
    yield s
    s.stop()


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def test_metrics_exposition_series_and_promtool(metrics_server):
    s = metrics_server
    c = Client(s.port)
    data = np.random.default_rng(1).standard_normal((200, 16)).astype("<f4")
    assert c.call("VCREATE", "items", "DIM", "16", "INDEX", "HNSW") == "OK"
    c.pipeline([("VADD", "items", "FP32", v.tobytes(), f"i{n}") for n, v in enumerate(data)])
    for _ in range(3):
        c.call("VSIM", "items", "FP32", data[0].tobytes(), "COUNT", "5")
    assert "key does not exist" in str(c.call("VDIM", "nope"))
    status, ctype, text = fetch(s.metrics_url)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), ctype
    got = series(text)
    assert got['latentd_commands_total{command="vadd"}'] == 200
    assert got['latentd_commands_total{command="vsim"}'] == 3
    assert got['latentd_command_errors_total{command="vdim"}'] == 1
    assert got['latentd_command_duration_seconds_count{command="vsim"}'] == 3
    assert got['latentd_command_duration_seconds_bucket{command="vsim",le="+Inf"}'] == 3
    assert got['latentd_collection_elements{collection="items"}'] == 200
    assert got['latentd_collection_memory_bytes{collection="items",part="vectors"}'] >= 200 * 16 * 4
    assert got['latentd_collection_memory_bytes{collection="items",part="total"}'] >= \
        got['latentd_collection_memory_bytes{collection="items",part="index"}']
    assert got["latentd_net_input_bytes_total"] >= 200 * 64
    assert got["latentd_net_output_bytes_total"] > 0
    assert got["latentd_connected_clients"] == 1
    assert got['latentd_replication_role{role="master"}'] == 1
    for name in ("latentd_rocksdb_sst_bytes", "latentd_rocksdb_wal_bytes", "latentd_rocksdb_pending_compaction_bytes",
                 "latentd_query_cache_hits_total", "latentd_query_cache_misses_total", "latentd_query_cache_bytes"):
        assert name in got, name
    if PROMTOOL:
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
    # A dropped collection's series go with it; other paths are 404.
    assert c.call("VDROP", "items") == 1
    assert 'collection="items"' not in fetch(s.metrics_url)[2]
    with pytest.raises(urllib.error.HTTPError) as e:
        fetch(s.metrics_url.replace("/metrics", "/other"))
    assert e.value.code == 404


@pytest.mark.skipif(PROMETHEUS is None, reason="needs Debian's prometheus package (make test-deps installs it)")
def test_a_real_prometheus_scrapes_latentd(metrics_server, tmp_path):
    s = metrics_server
    c = Client(s.port)
    c.call("VADD", "k", "VALUES", "2", "1", "0", "a")
    target = s.metrics_url.split("//", 1)[1].split("/", 1)[0]
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: latentd\n"
                      f"    static_configs:\n      - targets: ['{target}']\n")
    web = free_port()
    p = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{web}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, result = time.time() + 90, []
        query = f"http://127.0.0.1:{web}/api/v1/query?query=latentd_commands_total"
        while time.time() < deadline and not result:
            time.sleep(1)
            try:
                body = json.loads(fetch(query)[2])
                result = body["data"]["result"]
            except (urllib.error.URLError, ConnectionError, KeyError):
                continue
        assert result, "Prometheus never returned latentd_commands_total"
        by_command = {r["metric"]["command"]: float(r["value"][1]) for r in result}
        assert by_command.get("vadd") == 1, by_command
        assert all(r["metric"]["job"] == "latentd" for r in result)
        up = json.loads(fetch(f"http://127.0.0.1:{web}/api/v1/query?query=up")[2])["data"]["result"]
        assert [float(r["value"][1]) for r in up] == [1.0], up
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=30)
