#!/usr/bin/env python3
"""Fault injection for cluster failover (issue 14): a real etcd and three latentd nodes on loopback ports,
then N rounds of: a writer VADDs to the leader with WAIT 1 after each write; the leader is killed with SIGKILL
at a random moment; the time until another node is elected and takes a write is measured; every write WAIT
acknowledged must be on the new leader; the killed node is started again (it rejoins as a replica).

Usage: tools/bench_failover.py [--kills 50] [--ttl 2]   (release build: swift build -c release)
Prints each round and the totals: acknowledged writes lost (target 0), failover time median and max.
"""
import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from resp_client import Client  # noqa: E402

LATENTD = os.path.join(ROOT, ".build", "release", "latentd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, node_id, etcd, ttl):
        self.id, self.etcd, self.ttl = node_id, etcd, ttl
        self.dir = tempfile.mkdtemp(prefix=f"latentd-failover-{node_id}-")
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([LATENTD, "--port", str(self.port), "--data-dir", self.dir, "--log-level", "warning",
                                      "--cluster", self.etcd, "--cluster-name", "fi", "--node-id", self.id,
                                      "--cluster-lease-ttl", str(self.ttl)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("latentd ready"):
            raise RuntimeError(f"{self.id} did not start: {line!r}")

    def role(self):
        try:
            c = Client(self.port, timeout=1)
            return c.call("ROLE")[0].decode()
        except (OSError, ConnectionError, AttributeError):
            return None

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def leader(nodes, exclude=None):
    for n in nodes:
        if n is not exclude and n.proc.poll() is None and n.role() == "master":
            # A node whose ROLE says master but is fenced (just joined) refuses writes: check one.
            try:
                r = Client(n.port, timeout=1).call("VADD", "probe", "VALUES", "2", "1", "1", "p")
                if r in (0, 1):
                    return n
            except (OSError, ConnectionError):
                pass
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--ttl", type=int, default=2)
    args = ap.parse_args()
    etcd_bin = shutil.which("etcd")
    if not etcd_bin or not os.path.exists(LATENTD):
        sys.exit("needs etcd (apt install etcd-server) and a release build (swift build -c release)")
    data = tempfile.mkdtemp(prefix="latentd-failover-etcd-")
    cport, pport = free_port(), free_port()
    url = f"http://127.0.0.1:{cport}"
    etcd = subprocess.Popen([etcd_bin, "--name", "fi", "--data-dir", data, "--listen-client-urls", url, "--advertise-client-urls", url,
                             "--listen-peer-urls", f"http://127.0.0.1:{pport}", "--initial-advertise-peer-urls",
                             f"http://127.0.0.1:{pport}", "--initial-cluster", f"fi=http://127.0.0.1:{pport}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    nodes = [Node(f"n{i}", url, args.ttl) for i in range(3)]
    rng = random.Random(14)
    times, lost_total, acked_total = [], 0, 0
    try:
        for n in nodes:
            n.start()
        deadline = time.time() + 30
        while leader(nodes) is None and time.time() < deadline:
            time.sleep(0.1)
        print(f"date: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, etcd + 3 latentd on this machine, lease TTL {args.ttl} s")
        for k in range(args.kills):
            old = leader(nodes)
            if old is None:
                raise RuntimeError("no leader")
            # A round starts once a replica is streaming (a restarted node first takes a full copy).
            online_by = time.time() + 60
            while "state=online" not in Client(old.port).call("INFO", "replication").decode() and time.time() < online_by:
                time.sleep(0.1)
            acknowledged, stop = [], threading.Event()

            def writer(port=old.port, tag=k):
                try:
                    w = Client(port, timeout=5)
                    i = 0
                    while not stop.is_set():
                        if w.call("VADD", "v", "VALUES", "2", "1", str(i), f"r{tag}-{i}") in (0, 1) and w.call("WAIT", "1", "2000") >= 1:
                            acknowledged.append(f"r{tag}-{i}")
                        i += 1
                except (OSError, ConnectionError, TypeError):
                    pass

            t = threading.Thread(target=writer)
            t.start()
            time.sleep(rng.uniform(0.3, 1.5))
            killed_at = time.time()
            old.kill()
            stop.set()
            t.join()
            new = None
            while new is None and time.time() - killed_at < 60:
                new = leader(nodes, exclude=old)
                if new is None:
                    time.sleep(0.05)
            if new is None:
                raise RuntimeError("no new leader within 60 s")
            took = time.time() - killed_at
            present = Client(new.port).pipeline([("VISMEMBER", "v", a) for a in acknowledged]) if acknowledged else []
            lost = sum(1 for p in present if p != 1)
            times.append(took)
            lost_total += lost
            acked_total += len(acknowledged)
            print(f"kill {k + 1}: {old.id} killed, {new.id} leads after {took:.2f} s; {len(acknowledged)} acknowledged, {lost} lost")
            old.start()  # rejoins as a replica
        print(f"\ntotal: {args.kills} leader kills, {acked_total} writes acknowledged by WAIT 1, {lost_total} lost; "
              f"failover median {statistics.median(times):.2f} s, max {max(times):.2f} s")
    finally:
        for n in nodes:
            n.stop()
        etcd.send_signal(signal.SIGTERM)
        etcd.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
