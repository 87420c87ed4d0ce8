#!/usr/bin/env python3
"""Churn soak for latentd's HNSW maintenance (issue 8), loopback only, bounded in time and count.

Loads an HNSW collection (20,000 elements by default), waits until its index is ready, then runs 64
clients that only update (VADD of a new vector) and delete (VREM) existing elements, with a few
searches, for --seconds. A monitor samples VINFO every second and PING every 100 ms from its own
connection. At the end it checks: no full rebuild ran during the churn (`builds` unchanged), the index
was `ready` at every sample, the pending tail and the tombstones (`deleted-in-index`) stayed within the
stated bounds, PING p99 below --max-ping-ms, every acknowledged write and delete is what VEMB returns,
and recall@10 of VSIM against VSIM TRUTH. RSS is sampled with the other figures.

Usage: tools/churn.py --latentd .build/release/latentd [--seconds 600] [--clients 64] [--elements 20000]
Exit status 0 when every check passed; the summary is printed as JSON.
"""
import argparse
import json
import os
import random
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from procinfo import rss_mib  # noqa: E402
import soak  # noqa: E402
from resp_client import Client, RespError  # noqa: E402


def start(latentd, data_dir):
    return soak.start(latentd, data_dir)


def fp32(v):
    return struct.pack("<%df" % len(v), *v)


def vinfo(c, name):
    r = c.call("VINFO", name)
    # Redis' fields come as simple strings and integers, LatentDB's as bulk strings.
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
    return {text(r[i]): text(r[i + 1]) for i in range(0, len(r), 2)}


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2)


class Churner(threading.Thread):
    """One client: updates and deletes the elements it owns (index % clients == wid), remembers the
    acknowledged state of each."""

    def __init__(self, wid, clients, port, args, deadline):
        super().__init__(daemon=True)
        self.wid, self.port, self.args, self.deadline = wid, port, args, deadline
        self.mine = list(range(wid, args.elements, clients))
        self.rng = random.Random(1000 + wid)
        self.state = {}  # element index -> vector, or None when deleted
        self.ops, self.errors, self.vsim_ms = 0, [], []

    def vec(self):
        return [round(self.rng.gauss(0, 1), 4) for _ in range(self.args.dim)]

    def run(self):
        c = Client(self.port)
        while time.time() < self.deadline and self.ops < self.args.max_ops_per_client:
            i = self.rng.choice(self.mine)
            op = self.rng.random()
            try:
                if op < 0.65:
                    v = self.vec()
                    r = c.call("VADD", "churn", "FP32", fp32(v), f"e{i}")
                    if isinstance(r, RespError):
                        self.errors.append(f"VADD e{i}: {r}")
                    else:
                        self.state[i] = v
                elif op < 0.95:
                    r = c.call("VREM", "churn", f"e{i}")
                    if isinstance(r, RespError):
                        self.errors.append(f"VREM e{i}: {r}")
                    else:
                        self.state[i] = None
                else:
                    t0 = time.time()
                    r = c.call("VSIM", "churn", "FP32", fp32(self.vec()), "COUNT", "10")
                    self.vsim_ms.append(1000 * (time.time() - t0))
                    if isinstance(r, RespError):
                        self.errors.append(f"VSIM: {r}")
            except (ConnectionError, OSError) as e:
                self.errors.append(f"connection: {e}")
                return
            self.ops += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latentd", required=True)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--elements", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--max-ops-per-client", type=int, default=10_000_000)
    ap.add_argument("--max-pending", type=int, default=5_000, help="bound on the pending tail at every sample")
    ap.add_argument("--max-deleted", type=int, default=5_000, help="bound on tombstones (deleted-in-index)")
    ap.add_argument("--max-ping-ms", type=float, default=10.0, help="bound on PING p99")
    ap.add_argument("--min-recall", type=float, default=0.9, help="bound on VSIM recall@10 against TRUTH")
    args = ap.parse_args()
    data_dir = tempfile.mkdtemp(prefix="latentdb-churn-")
    proc, port = start(args.latentd, data_dir)
    failures = []
    try:
        c = Client(port)
        c.call("VCREATE", "churn", "DIM", args.dim, "METRIC", "COSINE", "INDEX", "HNSW")
        rng = random.Random(5)
        initial = {}
        for base in range(0, args.elements, 1000):
            cmds = []
            for i in range(base, min(args.elements, base + 1000)):
                v = [round(rng.gauss(0, 1), 4) for _ in range(args.dim)]
                initial[i] = v
                cmds.append(["VADD", "churn", "FP32", fp32(v), f"e{i}"])
            for r in c.pipeline(cmds):
                if isinstance(r, RespError):
                    raise SystemExit(f"load failed: {r}")
        load_deadline = time.time() + 300
        while time.time() < load_deadline:
            info = vinfo(c, "churn")
            if info["index-state"] == "ready" and info["pending"] == "0":
                break
            time.sleep(0.2)
        else:
            raise SystemExit(f"index not ready after the load: {info}")
        builds_before = info["builds"]
        rss_before = rss_mib(proc.pid)

        deadline = time.time() + args.seconds
        workers = [Churner(w, args.clients, port, args, deadline) for w in range(args.clients)]
        for w in workers:
            w.start()
        started = time.time()
        probe = Client(port)
        samples, pings = [], []
        next_info = started
        while any(w.is_alive() for w in workers):
            t0 = time.time()
            probe.call("PING")
            pings.append(1000 * (time.time() - t0))
            if time.time() >= next_info:
                info = vinfo(probe, "churn")
                samples.append({"t": round(time.time() - started, 1), "state": info["index-state"],
                                "pending": int(info["pending"]), "deleted": int(info["deleted-in-index"]),
                                "free": int(info.get("free-nodes", 0)), "builds": info["builds"],
                                "size": int(info["size"]), "rss_mib": round(rss_mib(proc.pid), 1)})
                next_info += 1.0
            time.sleep(0.1)
        for w in workers:
            w.join()
        errors = [e for w in workers for e in w.errors]
        failures += [f"client error: {e}" for e in errors[:20]]
        not_ready = [s for s in samples if s["state"] != "ready"]
        if not_ready:
            failures.append(f"index not ready at {len(not_ready)} of {len(samples)} samples, first {not_ready[0]}")
        rebuilt = [s for s in samples if s["builds"] != builds_before]
        if rebuilt:
            failures.append(f"a full rebuild ran during the churn: builds {builds_before} -> {rebuilt[-1]['builds']}")
        max_pending = max(s["pending"] for s in samples)
        max_deleted = max(s["deleted"] for s in samples)
        if max_pending > args.max_pending:
            failures.append(f"pending tail reached {max_pending} > {args.max_pending}")
        if max_deleted > args.max_deleted:
            failures.append(f"tombstones reached {max_deleted} > {args.max_deleted}")
        ping_p99 = percentile(pings, 0.99)
        if ping_p99 > args.max_ping_ms:
            failures.append(f"PING p99 {ping_p99} ms > {args.max_ping_ms} ms")

        # Let maintenance settle, then check every element and the recall.
        settle = time.time() + 120
        while time.time() < settle:
            info = vinfo(c, "churn")
            if info["pending"] == "0" and info["deleted-in-index"] == "0":
                break
            time.sleep(0.2)
        final = {}
        final.update(initial)
        for w in workers:
            final.update(w.state)
        wrong = 0
        for i, v in final.items():
            emb = c.call("VEMB", "churn", f"e{i}")
            if v is None:
                wrong += emb is not None
            elif emb is None:
                wrong += 1
            else:
                want = struct.unpack("<%df" % args.dim, fp32(v))
                norm = sum(x * x for x in want) ** 0.5
                got = [float(x) for x in emb]
                # VEMB returns what was stored; COSINE keeps the vector as sent.
                wrong += any(abs(a - b) > 1e-4 * max(1, norm) for a, b in zip(got, want))
        if wrong:
            failures.append(f"{wrong} elements differ from their acknowledged state")
        qrng = random.Random(77)
        hits = total = 0
        for _ in range(100):
            q = fp32([qrng.gauss(0, 1) for _ in range(args.dim)])
            approx = c.call("VSIM", "churn", "FP32", q, "COUNT", "10")
            truth = c.call("VSIM", "churn", "FP32", q, "COUNT", "10", "TRUTH")
            hits += len(set(approx) & set(truth))
            total += len(truth)
        recall = hits / max(1, total)
        if recall < args.min_recall:
            failures.append(f"recall@10 {recall:.3f} < {args.min_recall}")
        end_info = vinfo(c, "churn")
        vsim = [x for w in workers for x in w.vsim_ms]
        summary = {
            "seconds": args.seconds, "clients": args.clients, "elements": args.elements, "dim": args.dim,
            "client_ops": sum(w.ops for w in workers),
            "ops_per_second": round(sum(w.ops for w in workers) / max(1e-9, args.seconds), 1),
            "builds_before_churn": builds_before, "builds_at_end": end_info["builds"],
            "samples": len(samples), "not_ready_samples": len(not_ready),
            "pending_max": max_pending, "pending_p99": percentile([s["pending"] for s in samples], 0.99),
            "deleted_in_index_max": max_deleted, "free_nodes_max": max(s["free"] for s in samples),
            "repair_passes": end_info.get("repair-passes"),
            "ping_ms_p50": percentile(pings, 0.5), "ping_ms_p99": ping_p99, "ping_ms_max": percentile(pings, 1.0),
            "vsim_ms_p50": percentile(vsim, 0.5), "vsim_ms_p99": percentile(vsim, 0.99),
            "recall_at_10_after": round(recall, 4),
            "rss_mib_before_churn": round(rss_before, 1),
            "rss_mib_per_minute": [s["rss_mib"] for s in samples][::60],
            "rss_mib_end": samples[-1]["rss_mib"] if samples else None,
            "failures": failures[:50], "failure_count": len(failures),
        }
        print(json.dumps(summary, indent=2))
        return 0 if not failures else 1
    finally:
        soak.stop_and_clean(proc, data_dir)


if __name__ == "__main__":
    sys.exit(main())
