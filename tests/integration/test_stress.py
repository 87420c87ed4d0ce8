"""A short run of tools/stress.py (the 10-minute soak of issue 7, bounded to 20 s here): concurrent writes,
searches and catalog maintenance, then kill -9, restart and a consistency check of every acknowledged write."""
import json
import os
import subprocess
import sys

from conftest import LATENTD, ROOT


def test_short_stress_run_keeps_every_acknowledged_write():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "stress.py"), "--latentd", LATENTD,
                          "--seconds", "20", "--clients", "16"], capture_output=True, text=True, timeout=300)
    summary = json.loads(out.stdout[out.stdout.index("{"):])
    assert out.returncode == 0, summary["failures"]
    assert summary["client_ops"] > 1000 and summary["maintenance_ops"] > 50
    assert summary["elements_checked_after_restart"] > 500
