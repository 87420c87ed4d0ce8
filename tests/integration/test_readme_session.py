"""The examples of README.md and docs/protocol.md, replayed word for word against a fresh server."""
import os
import re
import subprocess

from conftest import ROOT, read_until_closed

PROMPT = "127.0.0.1:7379> "


def blocks(path):
    text = open(os.path.join(ROOT, path)).read()
    return re.findall(r"```[a-z]*\n(.*?)```", text, re.S)


def replay_cli(server, block):
    commands, expected = [], []
    for line in block.splitlines():
        if line.startswith(PROMPT):
            commands.append(line[len(PROMPT):])
        elif not line.startswith("$ redis-cli"):
            expected.append(line)
    # Piped into redis-cli, each line is split into words exactly as the interactive prompt does;
    # --no-raw keeps the terminal's reply formatting ("(integer) 1", '1) "a"').
    out = subprocess.run(["redis-cli", "-p", str(server.port), "--no-raw"], input="\n".join(commands) + "\n",
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == expected, out.stdout + out.stderr
    return len(commands)


def replay_nc(server, block):
    lines = block.splitlines()
    payload = re.match(r"\$ printf '(.*)' \| nc", lines[0]).group(1).encode().decode("unicode_escape")
    sock = server.connect()
    sock.sendall(payload.encode())
    sock.shutdown(1)  # the end of nc's input
    reply = read_until_closed(sock).decode()
    assert reply.split("\r\n")[:-1] == lines[1:]


def replay_all(server, path):
    replayed = 0
    for block in blocks(path):
        if block.startswith("$ redis-cli") or block.startswith(PROMPT):
            replay_cli(server, block)
            replayed += 1
        elif block.startswith("$ printf") and "| nc" in block.splitlines()[0]:
            replay_nc(server, block)
            replayed += 1
    return replayed


def test_readme_examples(server):
    assert replay_all(server, "README.md") == 2


def test_protocol_doc_examples(server):
    assert replay_all(server, "docs/protocol.md") == 3
