"""VSIM ... FILTER through the server (issue 10): results match a Python evaluation of the filter over the
exact ranking, the result cache keys on the filter and is invalidated by VSETATTR, attributes survive a
restart, malformed expressions name the column, and FILTER composes with EXCLUDE-SEEN and WITHATTRIBS."""
import json
import random

from conftest import Server
from resp_client import Client, RespError, text


def load(c, n=300, seed=3):
    rng = random.Random(seed)
    vectors = {}
    assert c.call("VCREATE", "items", "DIM", "4", "METRIC", "L2", "INDEX", "HNSW") == "OK"
    for i in range(n):
        v = [rng.uniform(-1, 1) for _ in range(4)]
        vectors[f"i{i}"] = v
        attrs = json.dumps({"year": 1950 + i % 70, "genre": ["drama", "comedy", "scifi"][i % 3], "tags": [i % 5, "t"]})
        c.call("VADD", "items", "VALUES", "4", *map(str, v), f"i{i}", "SETATTR", attrs)
    return vectors


class TextClient(Client):
    """Replies as str (element names), not bytes."""

    def call(self, *args):
        reply = super().call(*args)
        if isinstance(reply, list):
            return [text(x) if x is not None else None for x in reply]
        return text(reply) if isinstance(reply, bytes) else reply


def expected(vectors, q, keep, count):
    ranked = sorted(vectors, key=lambda k: (sum((a - b) ** 2 for a, b in zip(vectors[k], q)), k))
    return [k for k in ranked if keep(int(k[1:]))][:count]


def test_filter_results_cache_and_restart(data_dir):
    server = Server(data_dir).start()
    try:
        c = TextClient(server.port)
        vectors = load(c)
        q = [0.1, 0.2, -0.3, 0.4]
        args = ["VSIM", "items", "VALUES", "4", *map(str, q), "COUNT", "7", "TRUTH"]
        cases = [
            (".year >= 2000 and .genre == 'scifi'", lambda i: 1950 + i % 70 >= 2000 and i % 3 == 2),
            (".genre in ['drama', 'comedy'] && !(.year < 1990)", lambda i: i % 3 != 2 and 1950 + i % 70 >= 1990),
            ("3 in .tags or .year % 10 == 0", lambda i: i % 5 == 3 or (1950 + i % 70) % 10 == 0),
            (".year == 1951", lambda i: 1950 + i % 70 == 1951),
            (".missing > 1 or 1", lambda i: False),
        ]
        for expression, keep in cases:
            want = expected(vectors, q, keep, 7)
            assert c.call(*args, "FILTER", expression) == want, expression
            # the approximate path returns COUNT matches too (HNSW walk or the planner's scan)
            got = c.call("VSIM", "items", "VALUES", "4", *map(str, q), "COUNT", "7", "FILTER", expression)
            assert len(got) == len(want) and all(keep(int(k[1:])) for k in got), expression
        # the cache keys on the filter text, and VSETATTR invalidates it
        one = c.call(*args, "FILTER", ".year == 1951")
        assert c.call(*args, "FILTER", ".year == 1951") == one
        assert c.call("VSETATTR", "items", one[0], json.dumps({"year": 1800})) == 1
        assert one[0] not in c.call(*args, "FILTER", ".year == 1951")
        assert c.call(*args, "FILTER", ".year == 1800") == [one[0]]
        # any string is kept as attributes; a filter sees no fields in it
        assert c.call("VSETATTR", "items", "i0", "not json") == 1
        assert c.call("VGETATTR", "items", "i0") == "not json"
        assert "i0" not in c.call("VSIM", "items", "ELE", "i0", "COUNT", "300", "FILTER", ".year > 0")
        with_attrs = c.call("VSIM", "items", "ELE", "i3", "COUNT", "2", "WITHATTRIBS", "FILTER", ".genre == 'drama'")
        assert json.loads(with_attrs[1])["genre"] == "drama"
        # malformed: the column is named; the server keeps serving
        error = Client.call(c, *args, "FILTER", ".year >> 3")
        assert isinstance(error, RespError) and "syntax error in FILTER expression at column 8" in str(error), error
        assert c.call("PING") == "PONG"
        server.kill()
        server = Server(data_dir).start()
        c = TextClient(server.port)
        assert c.call(*args, "FILTER", ".year == 1800") == [one[0]], "attribute columns are rebuilt at startup"
    finally:
        server.kill()


def test_filter_with_exclude_seen(server):
    c = TextClient(server.port)
    vectors = load(c, n=120)
    assert c.call("VCREATE", "users", "DIM", "4", "METRIC", "L2") == "OK"
    c.call("VADD", "users", "VALUES", "4", "0", "0", "0", "0", "u1")
    truth = c.call("VSIM", "items", "ELE", "u1", "FROM", "users", "COUNT", "120", "TRUTH", "FILTER", ".genre == 'comedy'")
    seen = truth[:5]
    assert c.call("VSETSEEN", "users", "u1", *seen) == 1
    got = c.call("VSIM", "items", "ELE", "u1", "FROM", "users", "COUNT", "5", "EF", "5", "EXCLUDE-SEEN", "FILTER",
                 ".genre == 'comedy'")
    assert got == truth[5:10]
    assert len(vectors) == 120
