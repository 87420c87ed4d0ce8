"""What the tests and tools/stress.py read about a process from /proc."""


def rss_mib(pid):
    """Resident set size of `pid` in MiB (0 when it cannot be read)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0
