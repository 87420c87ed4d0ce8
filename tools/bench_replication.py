#!/usr/bin/env python3
"""Replication benchmarks (issue #13), all processes on this machine, loopback only, each bounded in time:

  vadd      VADD throughput on the leader with 0, 1 and 2 replicas; how long the replicas take to have all of
            it (vectors/s reaching a replica); replica lag while the load runs (bytes the leader streamed but
            the replica did not acknowledge, sampled from INFO every 100 ms; and the time a probe write takes
            to be acknowledged by every replica, VADD + WAIT, every 250 ms).
  vsim      VSIM QPS of a synth128 HNSW collection served by the leader alone, then by leader + 1 replica and
            leader + 2 replicas (one redis-benchmark per node, run at once; the result cache is off).
  failover  N trials: a writer VADDs with WAIT 1; the leader is killed with SIGKILL at a random moment; the
            replica is promoted with REPLICAOF NO ONE; every write WAIT acknowledged must be on it.
  copy      1,000,000 x 128 (FLAT): online backup, restore, and a new replica's full copy, timed.

Usage: tools/bench_replication.py [--sections vadd vsim failover copy] [--failover-trials 20]
Needs a release build (swift build -c release), redis-benchmark, and ../bench-data/synth128_* for vsim.
"""
import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from resp_client import Client  # noqa: E402

LATENTD = os.path.join(ROOT, ".build", "release", "latentd")
LATENTCTL = os.path.join(ROOT, ".build", "release", "latentctl")


class Node:
    def __init__(self, leader=None, *extra):
        self.dir = tempfile.mkdtemp(prefix="latentd-benchrepl-")
        args = [LATENTD, "--port", "0", "--data-dir", self.dir, "--log-level", "warning", *extra]
        if leader:
            args += ["--replicaof", f"127.0.0.1 {leader.port}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("latentd ready on"):
            raise RuntimeError(f"latentd did not start: {line!r}")
        self.port = int(line.strip().rsplit(":", 1)[1])

    def info(self):
        out = Client(self.port).call("INFO", "replication").decode()
        return dict(line.split(":", 1) for line in out.split("\r\n") if ":" in line)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(predicate, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    raise TimeoutError("condition not met in time")


def acked(leader, count):
    """Offsets the leader's replicas acknowledged (from INFO's slaveN lines)."""
    i = leader.info()
    return [int(re.search(r"offset=(\d+)", i[f"slave{n}"]).group(1)) for n in range(count) if f"slave{n}" in i]


def bench_vadd(count):
    print(f"\n## VADD {count:,} x 128 (FLAT, L2), 4 connections x 64 in flight, with 0, 1 and 2 replicas")
    print("| replicas | leader VADD vectors/s | all replicas have it after | vectors/s reaching every replica | "
          "max lag (bytes) | median lag (bytes) | probe VADD+WAIT median / p99 / max (ms) |")
    print("|---|---|---|---|---|---|---|")
    for n in (0, 1, 2):
        leader = Node()
        replicas = [Node(leader) for _ in range(n)]
        try:
            if n:
                wait_until(lambda: len([r for r in acked(leader, n)]) == n and leader.info()["connected_slaves"] == str(n))
            lags, probes, stop = [], [], threading.Event()

            def sample():
                while not stop.is_set():
                    i = leader.info()
                    offsets = [int(re.search(r"offset=(\d+)", i[f"slave{k}"]).group(1)) for k in range(n) if f"slave{k}" in i]
                    if offsets:
                        lags.append(int(i["master_repl_offset"]) - min(offsets))
                    time.sleep(0.1)

            def probe():
                c = Client(leader.port)
                k = 0
                while not stop.is_set():
                    t0 = time.perf_counter()
                    c.call("VADD", "probe", "VALUES", "2", "1", str(k), f"p{k}")
                    c.call("WAIT", str(n), "10000")
                    probes.append((time.perf_counter() - t0) * 1000)
                    k += 1
                    time.sleep(0.25)

            threads = [threading.Thread(target=sample), threading.Thread(target=probe)] if n else []
            for t in threads:
                t.start()
            t0 = time.perf_counter()
            out = subprocess.run([LATENTCTL, "bench", "vadd", "--port", str(leader.port), "--count", str(count), "--dim", "128",
                                  "--connections", "4", "--pipeline", "64"], capture_output=True, text=True, timeout=900)
            t_leader = time.perf_counter() - t0
            stop.set()
            for t in threads:
                t.join()
            rate = re.search(r"([\d.]+) vectors/s", out.stdout)
            leader_rate = float(rate.group(1)) if rate else float("nan")
            if n:
                final = int(leader.info()["master_repl_offset"])
                wait_until(lambda: min(acked(leader, n) or [0]) >= final)
                t_all = time.perf_counter() - t0
                for r in replicas:
                    assert Client(r.port).call("VCARD", "bench") == count
                lags.sort()
                probes.sort()
                p = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")
                print(f"| {n} | {leader_rate:,.0f} | {t_all:.2f} s (load took {t_leader:.2f} s) | {count / t_all:,.0f} | "
                      f"{max(lags) if lags else 0:,} | {p(lags, 0.5):,} | {p(probes, 0.5):.1f} / {p(probes, 0.99):.1f} / "
                      f"{max(probes) if probes else float('nan'):.1f} |")
            else:
                print(f"| 0 | {leader_rate:,.0f} | - | - | - | - | - |")
        finally:
            for r in replicas:
                r.stop()
            leader.stop()


def bench_vsim(data, requests):
    print(f"\n## VSIM QPS, synth128 (100,000 x 128, HNSW, EF 64, COUNT 10), 0 / 1 / 2 replicas serving reads")
    leader = Node()
    replicas = []
    try:
        out = subprocess.run([LATENTCTL, "bench", "ann-server", "--port", str(leader.port), "--data", data, "synth128",
                              "--collection", "c", "--efs", "64"], capture_output=True, text=True, timeout=1800)
        print("leader: " + " / ".join(line.strip() for line in out.stdout.splitlines() if line.strip()))
        query = ["VSIM", "c", "VALUES", "128", "__rand_int__"] + ["0.1"] * 127 + ["COUNT", "10", "EF", "64"]
        print("| nodes serving | redis-benchmark processes (-c 16 -P 4 each) | total queries/s | per node |")
        print("|---|---|---|---|")
        for n in (0, 1, 2):
            while len(replicas) < n:
                replicas.append(Node(leader))
                r = replicas[-1]
                wait_until(lambda: r.info().get("master_link_status") == "up")
                wait_until(lambda: dict(zip(*[iter([x.decode() if isinstance(x, bytes) else str(x)
                                                   for x in Client(r.port).call("VINFO", "c")])] * 2)).get("index-state") == "ready")
            nodes = [leader] + replicas[:n]
            for node in nodes:
                assert Client(node.port).call("CONFIG", "SET", "query-cache-mb", "0") == "OK"
            procs = [subprocess.Popen(["redis-benchmark", "-p", str(node.port), "-c", "16", "-P", "4", "-n", str(requests),
                                       "-r", "100000", "-q", *query], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                     for node in nodes]
            rates = []
            for p in procs:
                text, _ = p.communicate(timeout=900)
                m = re.findall(r"([\d.]+) requests per second", text.replace("\r", "\n"))
                rates.append(float(m[-1]) if m else float("nan"))
            print(f"| leader + {n} replicas | {len(nodes)} | {sum(rates):,.0f} | {' / '.join(f'{r:,.0f}' for r in rates)} |")
    finally:
        for r in replicas:
            r.stop()
        leader.stop()


def bench_failover(trials):
    print(f"\n## kill -9 of the leader, then REPLICAOF NO ONE on the replica: {trials} trials (WAIT 1 after each VADD)")
    rng = random.Random(2026)
    lost_total, acked_total = 0, 0
    for trial in range(trials):
        leader = Node()
        replica = Node(leader)
        try:
            wait_until(lambda: replica.info().get("master_link_status") == "up")
            acknowledged, stop = [], threading.Event()

            def writer():
                w = Client(leader.port, timeout=5)
                i = 0
                try:
                    while not stop.is_set():
                        if w.call("VADD", "k", "VALUES", "3", str(i % 7), "1", "2", f"id{i}") == 1 and w.call("WAIT", "1", "2000") >= 1:
                            acknowledged.append(f"id{i}")
                        i += 1
                except (OSError, ConnectionError):
                    pass

            t = threading.Thread(target=writer)
            t.start()
            time.sleep(rng.uniform(0.2, 2.0))
            leader.proc.send_signal(signal.SIGKILL)
            leader.proc.wait()
            stop.set()
            t.join()
            r = Client(replica.port)
            assert r.call("REPLICAOF", "NO", "ONE") == "OK"
            present = r.pipeline([("VISMEMBER", "k", a) for a in acknowledged])
            lost = sum(1 for p in present if p != 1)
            lost_total += lost
            acked_total += len(acknowledged)
            print(f"trial {trial + 1}: {len(acknowledged)} writes acknowledged by WAIT, {lost} missing after promotion")
        finally:
            replica.stop()
            leader.stop(signal.SIGKILL)
    print(f"total: {acked_total} acknowledged writes over {trials} trials, {lost_total} lost")


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def bench_copy(count):
    print(f"\n## {count:,} x 128 (FLAT): online backup, restore, full copy to a new replica")
    leader = Node()
    work = tempfile.mkdtemp(prefix="latentd-benchcopy-")
    replica = None
    try:
        out = subprocess.run([LATENTCTL, "bench", "vadd", "--port", str(leader.port), "--count", str(count), "--dim", "128",
                              "--connections", "4", "--pipeline", "64"], capture_output=True, text=True, timeout=1800)
        print("load: " + out.stdout.strip().splitlines()[-1])
        assert Client(leader.port).call("VCARD", "bench") == count
        t0 = time.perf_counter()
        b = subprocess.run([LATENTCTL, "backup", "--host", "127.0.0.1", "--port", str(leader.port), os.path.join(work, "b")],
                           capture_output=True, text=True, timeout=1800)
        t_backup = time.perf_counter() - t0
        assert b.returncode == 0, b.stderr
        t0 = time.perf_counter()
        r = subprocess.run([LATENTCTL, "restore", os.path.join(work, "b"), "--data-dir", os.path.join(work, "restored")],
                           capture_output=True, text=True, timeout=1800)
        t_restore = time.perf_counter() - t0
        assert r.returncode == 0, r.stderr
        size = du(os.path.join(work, "b"))
        t0 = time.perf_counter()
        replica = Node(leader)
        wait_until(lambda: replica.info().get("master_link_status") == "up", timeout=1800)
        t_copy = time.perf_counter() - t0
        assert Client(replica.port).call("VCARD", "bench") == count
        copied = int(replica.info()["replica_copy_bytes"])
        print("| what | time | rate |")
        print("|---|---|---|")
        print(f"| online backup (`latentctl backup --host`), {size / 2**20:,.0f} MiB | {t_backup:.2f} s | {size / 2**20 / t_backup:,.0f} MiB/s |")
        print(f"| restore (`latentctl restore`, checksums checked first) | {t_restore:.2f} s | {size / 2**20 / t_restore:,.0f} MiB/s |")
        print(f"| new replica: start, full copy ({copied / 2**20:,.0f} MiB), install, serving | {t_copy:.2f} s | "
              f"{count / t_copy:,.0f} vectors/s |")
    finally:
        if replica:
            replica.stop()
        leader.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", nargs="+", default=["vadd", "vsim", "failover", "copy"])
    ap.add_argument("--vadd-count", type=int, default=200_000)
    ap.add_argument("--vsim-requests", type=int, default=20_000)
    ap.add_argument("--failover-trials", type=int, default=20)
    ap.add_argument("--copy-count", type=int, default=1_000_000)
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "bench-data"))
    args = ap.parse_args()
    for tool in (LATENTD, LATENTCTL):
        if not os.path.exists(tool):
            sys.exit(f"{tool} is missing: run swift build -c release")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores; all nodes on this machine")
    if "vadd" in args.sections:
        bench_vadd(args.vadd_count)
    if "vsim" in args.sections:
        bench_vsim(args.data, args.vsim_requests)
    if "failover" in args.sections:
        bench_failover(args.failover_trials)
    if "copy" in args.sections:
        bench_copy(args.copy_count)


if __name__ == "__main__":
    main()
