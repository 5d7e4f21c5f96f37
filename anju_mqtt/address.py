"""Broker URLs: ``mqtt://[user[:password]@]host[:port]``, TLS as ``mqtts://``, with paho's aliases."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

# scheme -> TLS. ``tcp`` and ``ssl`` are the names paho's and Mosquitto's tools use for the same two.
SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}
PLAIN_PORT = 1883
TLS_PORT = 8883


class BrokerUrlError(ValueError):
    """A broker URL anju cannot use."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where and how to reach a broker."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse a broker URL (see ``SCHEMES``); the port defaults to 1883, or 8883 with TLS.

    The user name and password may be percent-encoded (``gw%40e01`` is ``gw@e01``).
    """
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise BrokerUrlError(f"{url!r} is not an mqtt:// or mqtts:// URL with a host")
    tls = SCHEMES[parts.scheme]
    try:
        port = parts.port or (TLS_PORT if tls else PLAIN_PORT)
    except ValueError as err:
        raise BrokerUrlError(f"bad port in {url!r}") from err
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )
