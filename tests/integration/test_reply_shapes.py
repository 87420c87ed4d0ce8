"""docs/protocol.md's table "Reply shapes, command by command", checked row by row: every request in it is
sent to latentd in RESP2 and after HELLO 3, on a fresh store holding the table's fixture, and the reply's
RESP type byte must be the one the table gives. A change of reply shape without the doc (or the reverse)
fails here."""
import os
import re

from conftest import ROOT
from resp_client import Client, encode

SETUP = [
    ["FLUSHALL"],
    ["VADD", "s", "VALUES", "2", "1", "0", "a", "SETATTR", '{"year":1999}'],
    ["VADD", "s", "VALUES", "2", "0", "1", "b"],
    ["VCREATE", "c", "DIM", "2", "METRIC", "IP"],
    ["VADD", "c", "VALUES", "2", "1", "1", "u"],
    ["EXPIRE", "c", "1000"],
]


def table_rows():
    text = open(os.path.join(ROOT, "docs", "protocol.md")).read()
    section = text.split("## Reply shapes, command by command", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        requests = re.findall(r"`([^`]+)`", cells[0])
        resp2 = re.match(r"`(.)`", cells[1]).group(1)
        resp3 = re.match(r"`(.)`", cells[2]).group(1)
        rows.extend((request, resp2, resp3) for request in requests)
    return rows


def reply_type(port, request, protocol):
    client = Client(port)
    try:
        if protocol == 3:
            client.sock.sendall(encode("HELLO", "3"))
            client.read_reply()
        for command in SETUP:
            client.sock.sendall(encode(*command))
            reply = client.read_reply()
            assert not isinstance(reply, Exception), (command, reply)
        client.sock.sendall(encode(*request.split(" ")))
        return client.read_reply_typed()
    finally:
        client.close()


def test_every_row_of_the_reply_shape_table(server):
    rows = table_rows()
    assert len(rows) >= 60, f"the table lost rows: {len(rows)}"
    wrong = []
    for request, resp2, resp3 in rows:
        for protocol, expected in ((2, resp2), (3, resp3)):
            got, value = reply_type(server.port, request, protocol)
            if got != expected:
                wrong.append(f"RESP{protocol} {request}: table says {expected}, latentd sent {got} ({value!r:.80})")
    assert not wrong, "\n".join(wrong)
