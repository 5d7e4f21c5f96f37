"""Unauthenticated endpoints refuse a huge chunked body while reading it: 413 early, memory flat.

Each server runs in a child process so that its peak resident memory (VmHWM) is its own: the figure
the issue measured (hub 186 -> 449 MB for 128 MiB to /login, agent 158 -> 584 MB for 256 MiB).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg
import pytest

from tests.hub.test_api import create_schema
from tests.services import free_port, wait_port

CHUNK = b"x" * (1024 * 1024)
MIB = 1024 * 1024


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM) in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@contextmanager
def child_server(code: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        wait_port("127.0.0.1", port, timeout=60)
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)


def send_chunked(port: int, path: str, total_mib: int, headers: str = "") -> tuple[int, int]:
    """POST ``total_mib`` MiB chunked; stop when the server answers. Return (status, MiB sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Transfer-Encoding: chunked\r\n{headers}\r\n".encode())
    sent = 0
    answer = b""
    sock.setblocking(False)
    try:
        while sent < total_mib:
            with suppress(BlockingIOError):
                answer += sock.recv(65536)
            if answer:
                break
            try:
                sock.setblocking(True)
                sock.sendall(f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n")
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                break
            finally:
                sock.setblocking(False)
        sock.setblocking(True)
        sock.settimeout(30)
        while b"\r\n" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    finally:
        sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1") else 0
    return status, sent


def test_login_refuses_a_128_mib_chunked_body_early(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
    port = free_port()
    code = ("import uvicorn; from anju.hub.api.app import create_app;"
            f"uvicorn.run(create_app(database_url={database_url!r}), host='127.0.0.1', port={port},"
            " log_level='warning')")
    with child_server(code, port) as proc:
        time.sleep(0.5)
        before = peak_rss(proc.pid)
        results = {path: send_chunked(port, path, 128) for path in ("/login", "/api/auth/login")}
        grown = peak_rss(proc.pid) - before
    print(f"hub: {results}, peak RSS grew {grown / MIB:.1f} MiB")
    for path, (status, sent) in results.items():
        assert status == 413, path
        assert sent < 32, f"{path}: {sent} MiB sent before the answer"
    assert grown < 64 * MIB


@pytest.mark.parametrize("token", [None, "a-gate-token"])
def test_gate_push_refuses_a_256_mib_chunked_body_early(token: str | None) -> None:
    port = free_port()
    gate = ("GateConfig(device_id='G1', building='B1', source='http', listen_host='127.0.0.1',"
            f" listen_port={port}, path='/events', token={token!r})")
    code = ("import uvicorn; from anju.edge_agent.site import GateConfig;"
            " from anju.edge_agent.gate_http import build_app;"
            f"uvicorn.run(build_app([{gate}], None), host='127.0.0.1', port={port}, log_level='warning',"
            " http='h11')")
    with child_server(code, port) as proc:
        time.sleep(0.5)
        before = peak_rss(proc.pid)
        status, sent = send_chunked(port, "/events", 256)  # no token sent
        grown = peak_rss(proc.pid) - before
    print(f"gate push (gate token {'set' if token else 'unset'}): {status} after {sent} MiB,"
          f" peak RSS grew {grown / MIB:.1f} MiB")
    assert status == (401 if token else 413)
    assert sent < 32
    assert grown < 64 * MIB
