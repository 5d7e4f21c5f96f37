"""Local services the demo (and the test suite) start for themselves: Mosquitto, or amqtt as a fallback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, and not handed out before by this process.

    The kernel may offer a port again as soon as it is released, before the simulator it was meant for
    has bound it: the demo's cameras once got the port of the estate's Modbus simulator that way.
    """
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def mosquitto_path() -> str | None:
    """Path of the mosquitto binary, or None when it is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


@dataclass(frozen=True)
class Broker:
    """A broker we started: its URL and whether it supports MQTT 5 shared subscriptions."""

    url: str
    name: str
    shared_subscriptions: bool


@contextmanager
def mosquitto_broker(workdir: Path | None = None) -> Iterator[Broker]:
    """Start a private Mosquitto on a free loopback port; stop it on exit."""
    exe = mosquitto_path()
    if exe is None:
        raise RuntimeError("mosquitto is not installed (Debian/Ubuntu: apt-get install mosquitto)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="anju-mqtt-", dir=workdir) as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        lines = [
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "max_inflight_messages 100",
            "max_queued_messages 1000000",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # as root, mosquitto would otherwise switch to a 'mosquitto' user
        conf.write_text("\n".join(lines) + "\n")
        with (Path(tmp) / "mosquitto.log").open("wb") as log_file:
            proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log_file, stderr=subprocess.STDOUT)
            try:
                wait_port("127.0.0.1", port)
                yield Broker(f"mqtt://127.0.0.1:{port}", "mosquitto", shared_subscriptions=True)
            finally:
                proc.terminate()
                proc.wait(10)


@contextmanager
def amqtt_broker(workdir: Path) -> Iterator[Broker]:
    """Start amqtt (pure Python, MQTT 3.1.1, no shared subscriptions) in a child process."""
    port = free_port()
    conf = workdir / "amqtt.yaml"
    conf.write_text(
        "listeners:\n  default:\n    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
    )
    with (workdir / "amqtt.log").open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)],
            stdout=log_file, stderr=subprocess.STDOUT,
        )
        try:
            wait_port("127.0.0.1", port, timeout=20)
            yield Broker(f"mqtt://127.0.0.1:{port}", "amqtt", shared_subscriptions=False)
        finally:
            proc.terminate()
            proc.wait(10)


@contextmanager
def local_broker(workdir: Path) -> Iterator[Broker]:
    """Mosquitto when installed, otherwise the in-Python amqtt broker."""
    if mosquitto_path() is not None:
        with mosquitto_broker(workdir) as b:
            yield b
    else:
        with amqtt_broker(workdir) as b:
            yield b
