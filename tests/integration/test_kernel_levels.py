"""Runtime selection of the distance kernels (issue #11): the one binary starts and answers correctly on a
CPU without AVX2 (emulated by qemu-user with -cpu Nehalem, which faults on AVX instructions as such a CPU
does), LATENT_KERNELS pins a level, and a level the CPU lacks is refused at start instead of SIGILL at
the first query."""
import os
import platform
import re
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import LATENTCTL, LATENTD
from resp_client import Client, pairs

QEMU = shutil.which("qemu-x86_64")
needs_qemu = pytest.mark.skipif(platform.machine() != "x86_64" or QEMU is None,
                                reason="needs x86-64 and qemu-user (make test-deps installs it)")
# A CPU model with SSE4.2 but no AVX at all: what the portable kernels must run on.
NO_AVX_CPU = ["-cpu", "Nehalem"]


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


class Latentd:
    """latentd under an optional wrapper (qemu) with extra environment; stopped by PID at the end."""

    def __init__(self, data_dir, wrapper=(), env=None):
        self.data_dir, self.wrapper, self.env = data_dir, list(wrapper), env or {}
        self.proc, self.port = None, None

    def start(self, timeout=120):
        args = self.wrapper + [LATENTD, "--port", "0", "--data-dir", self.data_dir, "--log-level", "warning"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **self.env})
        line = self.proc.stdout.readline()
        if not line.startswith("latentd ready on"):
            self.proc.wait(timeout=timeout)
            raise RuntimeError(f"latentd did not start: {line!r} {self.proc.stderr.read()!r}")
        self.port = int(line.strip().rsplit(":", 1)[1])
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=120)


def info_server(c):
    text = c.call("INFO", "server").decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def wait_ready(c, key, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = pairs(c.call("VINFO", key))
        if info["index-state"] == "ready" and info["pending"] == "0":
            return info
        time.sleep(0.2)
    raise AssertionError(f"index not ready: {pairs(c.call('VINFO', key))}")


@needs_qemu
def test_the_emulated_cpu_faults_on_avx2_code():
    """The control: without it the test below could pass on an emulator that runs AVX2 anyway."""
    args = [QEMU] + NO_AVX_CPU + [LATENTCTL, "bench", "kernels", "--dims", "16", "--seconds", "0.01", "--bytes", "65536"]
    portable = subprocess.run(args + ["--levels", "portable"], capture_output=True, text=True, timeout=300)
    assert portable.returncode == 0, portable.stderr
    assert "best kernel level portable" in portable.stdout, portable.stdout
    forced = subprocess.run(args + ["--levels", "avx2", "--unchecked-level"], capture_output=True, text=True, timeout=300)
    assert forced.returncode in (-signal.SIGILL, 128 + signal.SIGILL), (forced.returncode, forced.stderr[-500:])


@needs_qemu
def test_latentd_serves_exact_answers_on_a_cpu_without_avx(tmp_path):
    rng = np.random.default_rng(11)
    dim, n = 40, 200  # 40: the SIMD16, SIMD8 and scalar tails all run
    data = rng.standard_normal((n, dim)).astype("<f4")
    queries = rng.standard_normal((8, dim)).astype("<f4")
    s = Latentd(str(tmp_path / "d"), wrapper=[QEMU] + NO_AVX_CPU).start()
    try:
        c = Client(s.port, timeout=120)
        assert "portable" in info_server(c)["distance_kernels"]
        assert "chosen at run time; CPU supports up to portable" in info_server(c)["distance_kernels"]
        for metric in ("L2", "COSINE", "IP"):
            key = "v" + metric
            assert c.call("VCREATE", key, "DIM", str(dim), "METRIC", metric, "INDEX", "HNSW") == "OK"
            replies = c.pipeline([("VADD", key, "FP32", v.tobytes(), str(i)) for i, v in enumerate(data)])
            assert all(r == 1 for r in replies), replies[:3]
            wait_ready(c, key)
            for q in queries:
                if metric == "L2":
                    expected = np.argsort(((data - q) ** 2).sum(axis=1), kind="stable")[:10]
                elif metric == "IP":
                    expected = np.argsort(-(data @ q), kind="stable")[:10]
                else:
                    norms = np.linalg.norm(data, axis=1) * np.linalg.norm(q)
                    expected = np.argsort(-(data @ q) / norms, kind="stable")[:10]
                exact = [int(x) for x in c.call("VSIM", key, "FP32", q.tobytes(), "COUNT", "10", "TRUTH")]
                assert exact == [int(x) for x in expected], (metric, exact, expected)
                approx = [int(x) for x in c.call("VSIM", key, "FP32", q.tobytes(), "COUNT", "10", "EF", "200")]
                assert len(set(approx) & set(exact)) >= 9, (metric, approx, exact)
        before = c.call("VSIM", "vL2", "FP32", queries[0].tobytes(), "COUNT", "10")
    finally:
        s.stop()
    # The snapshot written under the portable kernels serves the same answers after a restart.
    s = Latentd(str(tmp_path / "d"), wrapper=[QEMU] + NO_AVX_CPU).start()
    try:
        c = Client(s.port, timeout=120)
        assert c.call("VSIM", "vL2", "FP32", queries[0].tobytes(), "COUNT", "10") == before
    finally:
        s.stop()


@pytest.mark.skipif(platform.machine() != "x86_64" or shutil.which("objdump") is None, reason="needs x86-64 and objdump")
def test_only_the_avx_kernel_modules_contain_avx_or_bmi_instructions():
    """Every path, not only the ones the emulated run exercised: no VEX/EVEX-encoded instruction (every
    AVX mnemonic starts with v) and no BMI/LZCNT/MOVBE instruction outside the two x86 kernel modules,
    whose symbols carry the module name."""
    for binary in (LATENTD, LATENTCTL):
        out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary], capture_output=True, text=True,
                             timeout=300, check=True).stdout
        function, offenders, kernel_functions = None, set(), set()
        pattern = re.compile(r"^ +[0-9a-f]+:\t(v[a-z0-9]+|shlx|shrx|sarx|rorx|pdep|pext|bzhi|andn|movbe|mulx|lzcnt) ")
        for line in out.splitlines():
            if line and line[0] != " " and line.endswith(">:"):
                function = line
            elif pattern.match(line):
                (kernel_functions if "LatentKernelsAVX" in function else offenders).add(function)
        assert kernel_functions, "the AVX kernel modules are missing from the binary"
        assert not offenders, sorted(offenders)[:10]


def test_latent_kernels_pins_the_level_and_refuses_what_the_cpu_lacks(tmp_path):
    s = Latentd(str(tmp_path / "a"), env={"LATENT_KERNELS": "portable"}).start()
    try:
        c = Client(s.port)
        assert info_server(c)["distance_kernels"].startswith("portable"), info_server(c)
        assert "pinned by LATENT_KERNELS" in info_server(c)["distance_kernels"]
        assert c.call("VADD", "k", "VALUES", "3", "1", "2", "3", "a") == 1
        assert c.call("VSIM", "k", "VALUES", "3", "1", "2", "3") == [b"a"]
    finally:
        s.stop()
    bogus = subprocess.run([LATENTD, "--port", "0", "--data-dir", str(tmp_path / "b")], capture_output=True, text=True,
                           env={**os.environ, "LATENT_KERNELS": "sse9"}, timeout=60)
    assert bogus.returncode != 0 and "use portable, avx2 or avx512" in bogus.stderr, bogus.stderr
    if platform.machine() == "x86_64" and "avx512f" not in cpu_flags():
        refused = subprocess.run([LATENTD, "--port", "0", "--data-dir", str(tmp_path / "c")], capture_output=True,
                                 text=True, env={**os.environ, "LATENT_KERNELS": "avx512"}, timeout=60)
        assert refused.returncode != 0, refused.stdout
        assert "LATENT_KERNELS=avx512 needs instructions this CPU lacks" in refused.stderr, refused.stderr
