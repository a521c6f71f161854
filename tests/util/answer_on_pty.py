#!/usr/bin/env python3
"""Run a command on a pseudo-terminal and answer its prompts.

Usage: answer_on_pty.py CWD EXPECT SEND [EXPECT SEND]... -- COMMAND [ARG]...
Waits for each EXPECT in the output, then types SEND and Enter. Prints the
whole transcript (what the terminal showed) and exits with the command's
status. Used by the tests of `kiln new`, which asks only on a terminal.
"""
import os
import pty
import select
import subprocess
import sys
import time

args = sys.argv[1:]
cut = args.index("--")
cwd, pairs, command = args[0], args[1:cut], args[cut + 1:]
steps = list(zip(pairs[0::2], pairs[1::2]))

master, slave = pty.openpty()
child = subprocess.Popen(command, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
os.close(slave)

seen = b""
deadline = time.monotonic() + 20


def read_some():
    global seen
    ready, _, _ = select.select([master], [], [], 0.2)
    if not ready:
        return True
    try:
        data = os.read(master, 4096)
    except OSError:  # EIO: the child closed the terminal
        return False
    if not data:
        return False
    seen += data
    return True


position = 0
for expect, send in steps:
    while expect.encode() not in seen[position:]:
        if time.monotonic() > deadline or not read_some():
            sys.stdout.write(seen.decode(errors="replace"))
            sys.exit(f"answer_on_pty.py: never saw {expect!r}")
    position = seen.index(expect.encode(), position) + len(expect)
    os.write(master, send.encode() + b"\n")

while time.monotonic() < deadline and read_some():
    if child.poll() is not None and not select.select([master], [], [], 0.1)[0]:
        break
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(child.wait())
