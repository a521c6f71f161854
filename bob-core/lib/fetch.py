"""bob-core's download command: Portage's FETCHCOMMAND and RESUMECOMMAND in
a kiln build container, and what download_file uses there.

    python3 fetch.py URI FILE

A kiln build container has no network. kiln's download service listens on
/kiln/fetch/socket: this sends it URI, and writes the bytes it answers with
to FILE (Portage then checks them against the Manifest). kiln decides what
may be fetched (the mirrors of kiln.toml's [sources], public hosts) and says
why when it refuses; with `kiln build --offline` there is no service at all.
Python, as Portage is: every builder that runs emerge has it.
"""

import os
import socket
import sys

SOCKET = "/kiln/fetch/socket"


def main(argv):
    if len(argv) != 3:
        print("usage: fetch.py URI FILE", file=sys.stderr)
        return 2
    uri, dest = argv[1], argv[2]
    if not os.path.exists(SOCKET):
        print(
            f"kiln: not fetched: {uri}: this build has no network (--offline): "
            "the file must be in the distfiles cache already "
            "(`kiln fetch`, or a file:// mirror's distfiles/)",
            file=sys.stderr,
        )
        return 1
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(SOCKET)
        conn.sendall(uri.encode() + b"\n")
        answer = conn.makefile("rb")
        head = answer.readline().decode(errors="replace").rstrip("\n")
        if not head.startswith("OK "):
            why = head[4:] if head.startswith("ERR ") else "the download service stopped"
            print(f"kiln: not fetched: {why}", file=sys.stderr)
            return 1
        left = int(head[3:])
        with open(dest, "wb") as out:
            while left:
                chunk = answer.read(min(left, 1 << 20))
                if not chunk:
                    break
                out.write(chunk)
                left -= len(chunk)
    if left:
        print(f"kiln: not fetched: {uri}: the transfer broke off", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
