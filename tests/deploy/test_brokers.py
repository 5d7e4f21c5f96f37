"""The shipped Mosquitto configs, run by a real Mosquitto: the hub broker (deploy/mosquitto/mosquitto.conf
with the ACL rendered from acl.template as its header says) and the estate broker of an estate gateway
(deploy/mosquitto/estate-broker.conf). Only paths and ports are changed for the test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from anju.services import mosquitto_path, wait_port
from tests.services import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
pytestmark = pytest.mark.integration


def _tools() -> tuple[str, ...]:
    found = (mosquitto_path(), shutil.which("mosquitto_passwd"), shutil.which("mosquitto_pub"),
             shutil.which("mosquitto_sub"), shutil.which("openssl"))  # fmt: skip
    if not all(found):
        pytest.fail("needs mosquitto, mosquitto-clients and openssl (scripts/bootstrap.sh installs them)")
    return found  # type: ignore[return-value]


def _certs(tmp: Path) -> None:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it."""
    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=anju test CA")  # fmt: skip
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (tmp / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "san.ext")  # fmt: skip


def _passwd(path: Path, users: dict[str, str]) -> None:
    for user, password in users.items():
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if not path.exists() else []), str(path), user,
                        password], check=True, capture_output=True)  # fmt: skip


def _render_acl(estates: list[str]) -> str:
    """The ACL as the command at the top of acl.template renders it."""
    text = (DEPLOY / "acl.template").read_text(encoding="utf-8")
    hub = re.search(r"^# ---- hub\n.*?^# ---- end hub\n", text, re.S | re.M)
    agent = re.search(r"^# ---- agent\n.*?^# ---- end agent\n", text, re.S | re.M)
    assert hub and agent
    return hub.group(0) + "".join(agent.group(0).replace("{ESTATE}", e) for e in estates)


@contextmanager
def _mosquitto(conf: Path, *ports: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run Mosquitto on ``conf``. As root it would switch to the 'mosquitto' user, who cannot read this
    test's files (in production the files belong to that user: deploy/README.md, "Broker files")."""
    if os.geteuid() == 0 and "\nuser " not in conf.read_text():
        conf.write_text(conf.read_text() + "\nuser root\n")
    proc = subprocess.Popen([str(mosquitto_path()), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        for port in ports:
            wait_port("127.0.0.1", port, timeout=10)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def _pub(port: int, topic: str, *extra: str) -> int:
    return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-m", "x", "-q",
                           "1", *extra], capture_output=True, timeout=15).returncode  # fmt: skip


def test_hub_broker_config_authenticates_encrypts_and_keeps_estates_apart(tmp_path: Path) -> None:
    _tools()
    _certs(tmp_path)
    _passwd(tmp_path / "passwd", {"anju-hub": "hubpw", "agent-E01": "e01pw", "agent-E02": "e02pw"})
    (tmp_path / "acl").write_text(_render_acl(["E01", "E02"]))
    tls, plain = free_port(), free_port()
    conf = (DEPLOY / "mosquitto.conf").read_text(encoding="utf-8")
    conf = (conf.replace("/mosquitto/config/", f"{tmp_path}/").replace("/mosquitto/certs/", f"{tmp_path}/")
            .replace("/mosquitto/data/", f"{tmp_path}/").replace("listener 8883", f"listener {tls} 127.0.0.1")
            .replace("listener 1883", f"listener {plain} 127.0.0.1"))  # fmt: skip
    (tmp_path / "mosquitto.conf").write_text(conf)
    agent_tls = ["--cafile", str(tmp_path / "ca.crt"), "-u", "agent-E01", "-P", "e01pw", "-i", "E01-gw1"]
    with _mosquitto(tmp_path / "mosquitto.conf", tls, plain):
        hub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(plain), "-u", "anju-hub", "-P",
                                "hubpw", "-t", "anju/v1/+/readings", "-v", "-q", "1", "-W", "6"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        time.sleep(0.5)
        assert _pub(tls, "anju/v1/E01/readings", *agent_tls) == 0
        assert _pub(tls, "anju/v1/E02/readings", *agent_tls) == 0  # accepted on the wire, dropped by the ACL
        out, _ = hub.communicate(timeout=15)
        assert out.split() == ["anju/v1/E01/readings", "x"]
        assert _pub(plain, "anju/v1/E01/readings") != 0  # anonymous
        assert _pub(tls, "anju/v1/E01/readings", *agent_tls[:2], "-u", "agent-E01", "-P", "wrong") != 0
        assert _pub(tls, "anju/v1/E01/readings", "-u", "agent-E01", "-P", "e01pw") != 0  # no TLS on 8883


def test_estate_broker_config_keeps_the_agents_session_across_a_restart(tmp_path: Path) -> None:
    _tools()
    _passwd(tmp_path / "passwd", {"anju-agent": "agentpw", "gate-1": "gatepw"})
    port = free_port()
    conf = (DEPLOY / "estate-broker.conf").read_text(encoding="utf-8")
    conf = (conf.replace("/etc/mosquitto/anju-estate.passwd", str(tmp_path / "passwd"))
            .replace("/var/lib/mosquitto/", f"{tmp_path}/").replace("listener 1883 ", f"listener {port} "))
    (tmp_path / "estate.conf").write_text(conf)
    agent = ["-h", "127.0.0.1", "-p", str(port), "-u", "anju-agent", "-P", "agentpw", "-i", "E01-gw1",
             "-q", "1"]  # fmt: skip
    with _mosquitto(tmp_path / "estate.conf", port):
        # the agent's persistent session subscribes, then goes away
        subprocess.run(["mosquitto_sub", *agent, "-c", "-t", "gates/#", "-W", "1"], capture_output=True,
                       timeout=15, check=False)  # fmt: skip
        assert _pub(port, "gates/G1/event", "-u", "gate-1", "-P", "gatepw") == 0
        assert _pub(port, "gates/G1/event") != 0  # anonymous devices are refused
    with _mosquitto(tmp_path / "estate.conf", port):  # restarted: the session and its message survive
        done = subprocess.run(["mosquitto_sub", *agent, "-c", "-t", "gates/#", "-C", "1", "-W", "5", "-v"],
                              capture_output=True, text=True, timeout=15, check=False)  # fmt: skip
    assert done.stdout.split() == ["gates/G1/event", "x"]
