"""HTTP client of the SMS gateway (``POST /api/v1/messages`` with an Idempotency-Key)."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

import httpx

from anju.hub import http_status


class GatewayUnavailable(Exception):
    """No answer from the gateway (connection refused, reset, timeout): worth sending again."""


@dataclass(frozen=True, slots=True)
class SendResult:
    """The gateway's answer to one message."""

    status: int
    message_id: str | None
    text: str

    @property
    def accepted(self) -> bool:
        """201 for a new message, 200 for one sent before under the same key."""
        return http_status.accepted(self.status)

    @property
    def retryable(self) -> bool:
        """Whether sending again may work (server trouble, throttling)."""
        return http_status.retryable(self.status)


class SmsGateway:
    """Sends text messages; one ``httpx.Client`` per instance, closed with it."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def __enter__(self) -> SmsGateway:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def send(self, *, idempotency_key: str, to: str, text: str) -> SendResult:
        """Send one message; raise ``GatewayUnavailable`` when no whole answer came back."""
        try:
            resp = self._http.post("/api/v1/messages", json={"to": to, "text": text},
                                   headers={"Idempotency-Key": idempotency_key})
            is_json = resp.headers.get("content-type", "").startswith("application/json")
            body = resp.json() if is_json else None
        except (httpx.TransportError, ValueError) as err:
            raise GatewayUnavailable(f"{type(err).__name__}: {err}") from err
        message_id = body.get("message_id") if isinstance(body, dict) else None
        return SendResult(status=resp.status_code, message_id=message_id, text=resp.text[:300])
