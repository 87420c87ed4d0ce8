"""A Redis client library (redis-py) against latentd: its handshake, pipelines and FP32 vectors from numpy."""
import numpy as np
import redis


def test_redis_py_client(server):
    r = redis.Redis(port=server.port, protocol=2)
    assert r.ping()
    assert r.execute_command("VCREATE", "items", "DIM", 64, "METRIC", "IP") == b"OK"
    rng = np.random.default_rng(7)
    items = rng.standard_normal((500, 64)).astype("<f4")
    pipe = r.pipeline(transaction=False)
    for i, v in enumerate(items):
        pipe.execute_command("VADD", "items", "FP32", v.tobytes(), f"m{i}")
    assert pipe.execute() == [1] * 500
    user = rng.standard_normal(64).astype("<f4")
    reply = r.execute_command("VSIM", "items", "FP32", user.tobytes(), "COUNT", 5, "WITHSCORES")
    ids = [x.decode() for x in reply[0::2]]
    scores = [float(x) for x in reply[1::2]]
    expected = np.argsort(-(items @ user))[:5]
    assert ids == [f"m{i}" for i in expected]
    np.testing.assert_allclose(scores, (items @ user)[expected], rtol=1e-4)
    assert r.execute_command("VCARD", "items") == 500
    info = r.info()
    assert info["connected_clients"] >= 1
