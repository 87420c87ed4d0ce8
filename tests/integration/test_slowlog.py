"""SLOWLOG, INFO commandstats / latencystats and CONFIG RESETSTAT through a real connection, read with
redis-py's own parsers (what a dashboard or an operator's script uses). Which commands cross the
threshold is covered deterministically in SlowLogAndCommandStatsTests; here the threshold is 0 (log
everything) so the test does not depend on this machine's speed."""
import numpy as np
import redis

from conftest import Server


def test_slowlog_entries_and_command_stats_through_redis_py(data_dir):
    s = Server(data_dir, "--slowlog-log-slower-than", "0", "--slowlog-max-len", "5").start()
    try:
        r = redis.Redis(port=s.port, protocol=2, client_name="reporting")
        assert r.config_get("slowlog-*") == {"slowlog-log-slower-than": "0", "slowlog-max-len": "5"}
        rng = np.random.default_rng(3)
        data = rng.standard_normal((2000, 64)).astype("<f4")
        r.execute_command("VCREATE", "big", "DIM", "64", "INDEX", "FLAT")
        pipe = r.pipeline(transaction=False)
        for i, v in enumerate(data):
            pipe.execute_command("VADD", "big", "FP32", v.tobytes(), f"e{i}")
        pipe.execute()
        r.slowlog_reset()
        q = rng.standard_normal(64).astype("<f4").tobytes()
        for _ in range(3):
            r.execute_command("VSIM", "big", "FP32", q, "COUNT", "10", "TRUTH")
        entries = r.slowlog_get(10)
        # Newest first: the three VSIMs, then SLOWLOG RESET (logged after it emptied the log).
        assert [e["command"].split(b" ")[0] for e in entries] == [b"VSIM", b"VSIM", b"VSIM", b"SLOWLOG"], entries
        assert r.slowlog_len() == 5, "SLOWLOG GET itself is logged too, as in Redis"
        newest = entries[0]
        assert newest["id"] > entries[1]["id"] > entries[2]["id"]
        assert newest["duration"] >= 0 and newest["start_time"] > 1_700_000_000
        assert newest["client_name"] == b"reporting"
        host, port = newest["client_address"].decode().rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        assert newest["command"].startswith(b"VSIM big FP32 ")
        assert b"... (128 more bytes)" in newest["command"], "the 256-byte FP32 blob keeps its first 128 bytes"

        stats = r.info("commandstats")
        vsim = stats["cmdstat_vsim"]
        assert vsim["calls"] == 3 and vsim["failed_calls"] == 0 and vsim["rejected_calls"] == 0, vsim
        assert vsim["usec"] > 0 and abs(vsim["usec_per_call"] - vsim["usec"] / 3) < 0.01, vsim
        assert stats["cmdstat_vadd"]["calls"] == 2000
        latency = r.info("latencystats")["latency_percentiles_usec_vsim"]
        assert set(latency) == {"p50", "p99", "p99.9"} and latency["p99.9"] >= latency["p50"] > 0, latency

        # The length limit holds and can be lowered at run time; RESETSTAT empties the counters; -1 logs nothing.
        for _ in range(8):
            r.execute_command("VSIM", "big", "FP32", q, "COUNT", "10", "TRUTH")
        assert r.slowlog_len() == 5
        r.config_set("slowlog-max-len", 2)
        assert r.slowlog_len() == 2
        r.config_resetstat()
        assert "cmdstat_vsim" not in r.info("commandstats")
        r.config_set("slowlog-log-slower-than", -1)
        r.slowlog_reset()
        r.execute_command("VSIM", "big", "FP32", q, "COUNT", "10", "TRUTH")
        assert r.slowlog_len() == 0
    finally:
        s.stop()
