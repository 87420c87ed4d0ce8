#!/usr/bin/env python3
"""Stress and consistency check for latentd (issue 7), loopback only, bounded in time and count.

64 clients mix VADD / VREM / VSIM / VSETATTR on their own elements of two collections (one FLAT, one
HNSW) while a maintenance client loops VREBUILD (HNSW <-> IVF, new parameters), VRENAME back and forth
and VDROP/VCREATE. Every acknowledged write is remembered. At the end latentd is killed with SIGKILL,
restarted on the same directory, and checked: every acknowledged write is there (vector and attributes),
deleted elements are gone, no ghost collection is listed, and VSIM equals VSIM TRUTH on the FLAT
collection. RSS is sampled every 5 s; start (after warm-up) and end are reported.

Usage: tools/stress.py --latentd .build/release/latentd [--seconds 600] [--clients 64]
Exit status 0 when every check passed; the summary is printed as JSON.
"""
import argparse
import json
import os
import random
import signal
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from procinfo import rss_mib  # noqa: E402
import soak  # noqa: E402
from resp_client import Client, RespError  # noqa: E402

DIM = 16


def start(latentd, data_dir, *extra):
    return soak.start(latentd, data_dir, "--fsync", "always", *extra)


def vec(rng):
    return [round(rng.uniform(-1, 1), 3) for _ in range(DIM)]


def fp32(v):
    return struct.pack("<%df" % len(v), *v)


class Worker(threading.Thread):
    """One client: owns elements w<id>-<n> in both collections and remembers what was acknowledged."""

    def __init__(self, wid, port, deadline, max_ops):
        super().__init__(daemon=True)
        self.wid, self.port, self.deadline, self.max_ops = wid, port, deadline, max_ops
        self.rng = random.Random(wid)
        self.state = {"stable": {}, "hnsw": {}}  # element -> (vector, attrs) or None when deleted
        self.ops, self.errors = 0, []
        self.vsim_seconds = []

    def run(self):
        c = Client(self.port)
        while time.time() < self.deadline and self.ops < self.max_ops:
            coll = self.rng.choice(["stable", "hnsw"])
            element = f"w{self.wid}-{self.rng.randrange(60)}"
            op = self.rng.random()
            try:
                if op < 0.45:
                    v = vec(self.rng)
                    attrs = json.dumps({"w": self.wid, "n": self.ops}) if self.rng.random() < 0.5 else None
                    args = ["VADD", coll, "FP32", fp32(v), element] + (["SETATTR", attrs] if attrs else [])
                    r = c.call(*args)
                    if isinstance(r, RespError):
                        self.errors.append(f"VADD {coll} {element}: {r}")
                    else:
                        old = self.state[coll].get(element)
                        keep = attrs if attrs is not None else (old[1] if old else None)
                        self.state[coll][element] = (v, keep)
                elif op < 0.6:
                    r = c.call("VREM", coll, element)
                    if isinstance(r, RespError):
                        self.errors.append(f"VREM: {r}")
                    else:
                        self.state[coll][element] = None
                elif op < 0.7:
                    attrs = json.dumps({"set": self.ops})
                    r = c.call("VSETATTR", coll, element, attrs)
                    if r == 1:
                        v, _ = self.state[coll][element]
                        self.state[coll][element] = (v, attrs)
                else:
                    t0 = time.time()
                    r = c.call("VSIM", coll, "FP32", fp32(vec(self.rng)), "COUNT", "10", "WITHSCORES")
                    self.vsim_seconds.append(time.time() - t0)
                    if isinstance(r, RespError):
                        self.errors.append(f"VSIM: {r}")
            except (ConnectionError, OSError) as e:
                self.errors.append(f"connection: {e}")
                return
            self.ops += 1


class Maintenance(threading.Thread):
    """Loops the catalog operations that used to race: VREBUILD, VRENAME, VDROP/VCREATE."""

    def __init__(self, port, deadline):
        super().__init__(daemon=True)
        self.port, self.deadline = port, deadline
        self.ops, self.errors = 0, []
        self.expected_names = None

    def run(self):
        c = Client(self.port)
        rng = random.Random(7)
        c.call("VCREATE", "ren-a", "DIM", DIM, "METRIC", "L2", "INDEX", "HNSW")
        c.call("VADD", "ren-a", "FP32", fp32(vec(rng)), "x")
        where = "ren-a"
        scratch = False
        while time.time() < self.deadline:
            step = self.ops % 4
            if step == 0:
                time.sleep(0.01)
            elif step == 1:
                target = "ren-b" if where == "ren-a" else "ren-a"
                r = c.call("VRENAME", where, target)
                if isinstance(r, RespError):
                    self.errors.append(f"VRENAME: {r}")
                else:
                    where = target
            elif step == 2:
                if scratch:
                    r = c.call("VDROP", "scratch")
                else:
                    r = c.call("VCREATE", "scratch", "DIM", DIM, "INDEX", "HNSW")
                    c.call("VADD", "scratch", "FP32", fp32(vec(rng)), "s")
                scratch = not scratch
            else:
                time.sleep(0.05)
            self.ops += 1
        self.expected_names = sorted(["stable", "hnsw", where] + (["scratch"] if scratch else []))


class Rebuilder(threading.Thread):
    """VREBUILD from its own connection, racing the renames and drops of Maintenance (the race that left
    ghost catalog entries): rebuilds whichever of the renamed collection's names exists at that moment."""

    def __init__(self, port, deadline):
        super().__init__(daemon=True)
        self.port, self.deadline = port, deadline
        self.ops, self.errors = 0, []

    def run(self):
        c = Client(self.port)
        rng = random.Random(11)
        while time.time() < self.deadline:
            kind = rng.choice([["INDEX", "HNSW", "M", str(rng.choice([8, 12, 16]))], ["INDEX", "IVF"],
                               ["INDEX", "HNSW", "EF_CONSTRUCTION", "4"], ["INDEX", "FLAT"]])
            for name in ("hnsw", "ren-a", "ren-b", "scratch"):
                r = c.call("VREBUILD", name, *kind)
                if isinstance(r, RespError) and "no such collection" not in str(r):
                    self.errors.append(f"VREBUILD {name}: {r}")
            self.ops += 1
            time.sleep(0.02)


MEMORY_FIELDS = ("used_memory_vectors", "used_memory_query_cache", "rocksdb_memtables", "rocksdb_table_readers",
                 "rocksdb_block_cache")


def percentile(sorted_seconds, q):
    if not sorted_seconds:
        return None
    return round(1000 * sorted_seconds[min(len(sorted_seconds) - 1, int(q * len(sorted_seconds)))], 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latentd", required=True)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--max-ops-per-client", type=int, default=10_000_000)
    ap.add_argument("--warmup", type=float, default=None, help="seconds before the start RSS (default 10%%)")
    ap.add_argument("--server-arg", action="append", default=[], help="extra latentd argument (repeatable)")
    args = ap.parse_args()
    data_dir = tempfile.mkdtemp(prefix="latentdb-stress-")
    proc, port = start(args.latentd, data_dir, *args.server_arg)
    failures = []
    try:
        c = Client(port)
        c.call("VCREATE", "stable", "DIM", DIM, "METRIC", "L2")
        c.call("VCREATE", "hnsw", "DIM", DIM, "METRIC", "COSINE", "INDEX", "HNSW")
        deadline = time.time() + args.seconds
        workers = [Worker(i, port, deadline, args.max_ops_per_client) for i in range(args.clients)]
        maintenance = Maintenance(port, deadline)
        rebuilder = Rebuilder(port, deadline)
        for t in workers + [maintenance, rebuilder]:
            t.start()
        warmup = args.warmup if args.warmup is not None else args.seconds * 0.1
        started = time.time()
        samples, memory, ping_worst = [], [], 0.0
        probe = Client(port)
        while any(t.is_alive() for t in workers + [maintenance, rebuilder]):
            time.sleep(min(5, max(0.5, args.seconds / 20)))
            t0 = time.time()
            probe.call("PING")
            ping_worst = max(ping_worst, time.time() - t0)
            samples.append((round(time.time() - started, 1), round(rss_mib(proc.pid), 1)))
            info = dict(line.split(":", 1) for line in probe.call("INFO", "memory").decode().splitlines() if ":" in line)
            memory.append({"t": samples[-1][0], "rss_mib": samples[-1][1],
                           **{k: round(int(info.get(k, 0)) / 2**20, 1) for k in MEMORY_FIELDS}})
        for t in workers + [maintenance, rebuilder]:
            t.join()
        after_warmup = [s for s in samples if s[0] >= warmup] or samples
        errors = [e for w in workers for e in w.errors] + maintenance.errors + rebuilder.errors
        failures += [f"client error: {e}" for e in errors[:20]]
        # Crash, restart, check.
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc, port = start(args.latentd, data_dir, *args.server_arg)
        c = Client(port)
        names = sorted(n.decode() for n in c.call("VLIST"))
        if names != maintenance.expected_names:
            failures.append(f"collections after restart {names}, expected {maintenance.expected_names}")
        checked = 0
        for w in workers:
            for coll, elements in w.state.items():
                for element, value in elements.items():
                    emb = c.call("VEMB", coll, element)
                    checked += 1
                    if value is None:
                        if emb is not None:
                            failures.append(f"{coll}/{element} was deleted (acknowledged) but is present")
                        continue
                    v, attrs = value
                    got = None if emb is None else [float(x) for x in emb]
                    want = list(struct.unpack("<%df" % DIM, fp32(v)))
                    if got is None or any(abs(a - b) > 1e-6 * max(1, abs(b)) for a, b in zip(got, want)):
                        failures.append(f"{coll}/{element}: acknowledged vector lost or wrong: {got} != {want}")
                    got_attrs = c.call("VGETATTR", coll, element)
                    if (got_attrs.decode() if got_attrs is not None else None) != attrs:
                        failures.append(f"{coll}/{element}: attributes {got_attrs!r} != acknowledged {attrs!r}")
        latencies = sorted(x for w in workers for x in w.vsim_seconds)
        rng = random.Random(99)
        for _ in range(50):
            q = fp32(vec(rng))
            if c.call("VSIM", "stable", "FP32", q, "COUNT", "10") != c.call("VSIM", "stable", "FP32", q, "COUNT", "10", "TRUTH"):
                failures.append("VSIM on the FLAT collection differs from TRUTH")
                break
        summary = {
            "seconds": args.seconds, "clients": args.clients,
            "client_ops": sum(w.ops for w in workers), "maintenance_ops": maintenance.ops + rebuilder.ops,
            "elements_checked_after_restart": checked,
            "rss_mib_start_after_warmup": after_warmup[0][1] if after_warmup else None,
            "rss_mib_end": samples[-1][1] if samples else None,
            "rss_mib_max": max(s[1] for s in samples) if samples else None,
            "ping_worst_seconds": round(ping_worst, 3),
            # One sample a minute (MiB): RSS beside what INFO memory attributes it to.
            "memory_per_minute": [m for i, m in enumerate(memory) if i == len(memory) - 1 or
                                  int(m["t"] // 60) != int(memory[i + 1]["t"] // 60)],
            "vsim_ms_p50": percentile(latencies, 0.50), "vsim_ms_p99": percentile(latencies, 0.99),
            "vsim_ms_max": percentile(latencies, 1.0),
            "failures": failures[:50], "failure_count": len(failures),
        }
        print(json.dumps(summary, indent=2))
        return 0 if not failures else 1
    finally:
        soak.stop_and_clean(proc, data_dir)


if __name__ == "__main__":
    sys.exit(main())
