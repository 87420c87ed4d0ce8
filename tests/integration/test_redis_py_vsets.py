"""redis-py's own vector-set test suite (tests/test_vsets.py of the redis-py release that `make test` installs)
run unchanged against latentd, over RESP2 and over RESP3.

The suite is not copied into this repository: the release's source distribution is downloaded from PyPI at
test time (pinned by version and SHA-256, cached under .venv/), and its tests run from there with its own
conftest.py. All 43 tests run; DESELECTED lists any that may not, with its reason (none today)."""
import hashlib
import os
import subprocess
import sys
import tarfile
import urllib.request

import pytest
import redis

from conftest import ROOT

VERSION = "8.1.0"
SDIST = ("https://files.pythonhosted.org/packages/a8/99/604f0b666d4c616d891cf77ebb9db6bb21601344c051aebf1b72b9ff915f/"
         "redis-8.1.0.tar.gz")
SHA256 = "6e1a19beef9225c83efd689c7e6b7da2d5215b1f42cd13b7fc3714d0a09c7b25"
# Each deselected test with why; nothing else may fail.
DESELECTED: dict[str, str] = {}


def redis_py_sources():
    cache = os.path.join(ROOT, ".venv", "redis-py-tests")
    tree = os.path.join(cache, f"redis-{VERSION}")
    if os.path.exists(os.path.join(tree, "tests", "test_vsets.py")):
        return tree
    os.makedirs(cache, exist_ok=True)
    archive = os.path.join(cache, f"redis-{VERSION}.tar.gz")
    if not os.path.exists(archive):
        with urllib.request.urlopen(SDIST, timeout=120) as response:
            data = response.read()
        if hashlib.sha256(data).hexdigest() != SHA256:
            raise RuntimeError("redis-py sdist does not match its pinned SHA-256")
        with open(archive, "wb") as f:
            f.write(data)
    with tarfile.open(archive) as t:
        t.extractall(cache)  # the archive is pinned by SHA-256 above
    return tree


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_vector_set_suite(server, protocol):
    assert redis.__version__ == VERSION, f"make test installs redis=={VERSION}; found {redis.__version__}"
    tree = redis_py_sources()
    deselect = [f"--deselect=tests/test_vsets.py::{name}" for name in DESELECTED]
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_vsets.py",
                          f"--redis-url=redis://127.0.0.1:{server.port}", f"--protocol={protocol}", *deselect],
                         cwd=tree, capture_output=True, text=True, timeout=600)
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-2000:]
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert f"{43 - len(DESELECTED)} passed" in summary, summary
