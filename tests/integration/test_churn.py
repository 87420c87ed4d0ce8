"""A short run of tools/churn.py (the 10-minute churn soak of issue 8, bounded to 20 s here): clients only
update and delete elements of an HNSW collection. The index must stay ready with no full rebuild, the
pending tail and tombstones within their bounds, and every acknowledged write and delete as VEMB says.
Debug build: the PING bound is the soak's job on a release build, so it is loosened here."""
import json
import os
import subprocess
import sys

from conftest import LATENTD, ROOT


def test_short_churn_run_keeps_the_index_ready_without_rebuilding():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "churn.py"), "--latentd", LATENTD,
                          "--seconds", "20", "--clients", "16", "--elements", "3000", "--dim", "16",
                          "--max-pending", "1100", "--max-deleted", "3000", "--max-ping-ms", "200"],
                         capture_output=True, text=True, timeout=400)
    summary = json.loads(out.stdout[out.stdout.index("{"):])
    assert out.returncode == 0, summary["failures"]
    assert summary["client_ops"] > 2000
    assert summary["builds_at_end"] == summary["builds_before_churn"]
    assert int(summary["repair_passes"]) > 0
