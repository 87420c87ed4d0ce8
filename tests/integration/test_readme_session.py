"""The README's redis-cli session and nc example, replayed word for word against a fresh server."""
import os
import re
import subprocess

from conftest import ROOT, read_until_closed

PROMPT = "127.0.0.1:7379> "


def readme_blocks():
    text = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"```[a-z]*\n(.*?)```", text, re.S)


def test_readme_redis_cli_session(server):
    block = next(b for b in readme_blocks() if b.startswith("$ redis-cli -p 7379"))
    commands, expected = [], []
    for line in block.splitlines()[1:]:
        if line.startswith(PROMPT):
            commands.append(line[len(PROMPT):])
        else:
            expected.append(line)
    assert len(commands) >= 10
    # Piped into redis-cli, each line is split into words exactly as the interactive prompt does;
    # --no-raw keeps the terminal's reply formatting ("(integer) 1", '1) "a"').
    out = subprocess.run(["redis-cli", "-p", str(server.port), "--no-raw"], input="\n".join(commands) + "\n",
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == expected, out.stdout + out.stderr


def test_readme_nc_example(server):
    test_readme_redis_cli_session(server)
    block = next(b for b in readme_blocks() if b.startswith("$ printf"))
    lines = block.splitlines()
    payload = re.match(r"\$ printf '(.*)' \| nc", lines[0]).group(1).encode().decode("unicode_escape")
    sock = server.connect()
    sock.sendall(payload.encode())
    sock.shutdown(1)  # what nc -q1 does at the end of its input
    reply = read_until_closed(sock).decode()
    assert reply.split("\r\n")[:-1] == lines[1:]
