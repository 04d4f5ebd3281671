"""Deletes the JetStream streams whose names contain a prefix (the schemathesis runner's own),
speaking the NATS text protocol directly so the test needs no NATS client package.
Usage: nats-delete-streams.py NATS_URL PREFIX"""

import json
import socket
import sys
from urllib.parse import urlparse


def request(sock, buf, subject, payload):
    inbox = "_INBOX.stdel"
    data = json.dumps(payload).encode()
    sock.sendall(f"PUB {subject} {inbox} {len(data)}\r\n".encode() + data + b"\r\nPING\r\n")
    while True:
        while b"\r\n" not in buf[0]:
            buf[0] += sock.recv(65536)
        line, buf[0] = buf[0].split(b"\r\n", 1)
        if line.startswith(b"MSG "):
            size = int(line.split()[-1])
            while len(buf[0]) < size + 2:
                buf[0] += sock.recv(65536)
            body, buf[0] = buf[0][:size], buf[0][size + 2 :]
            return json.loads(body)
        if line == b"PING":
            sock.sendall(b"PONG\r\n")


def main():
    url, prefix = urlparse(sys.argv[1]), sys.argv[2]
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 4222), timeout=5)
    buf = [b""]
    sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":false}\r\nSUB _INBOX.stdel 1\r\n')
    names = request(sock, buf, "$JS.API.STREAM.NAMES", {}).get("streams") or []
    for name in names:
        if prefix in name:
            request(sock, buf, f"$JS.API.STREAM.DELETE.{name}", {})


if __name__ == "__main__":
    main()
