"""HTTP client of the city tenancy system's case API: filings (``POST /api/v1/cases``) and later decisions
(``POST /api/v1/case-updates``), each with an Idempotency-Key, and the lookup of a filing by anju's case
reference (for when a send's answer never came and the key may not have been honoured)."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
from pydantic import SecretStr

from anju.hub import http_status


class TenancyError(Exception):
    """Base of the tenancy client's errors."""


class TenancyUnavailable(TenancyError):
    """The tenancy system could not be reached or did not answer in time (worth retrying)."""


@dataclass(frozen=True, slots=True)
class FilingResponse:
    """The tenancy system's answer to one filing."""

    status: int
    body: dict[str, Any] | None
    text: str

    @property
    def accepted(self) -> bool:
        """201 on first filing, 200 on a repeat with the same key and body."""
        return http_status.accepted(self.status)

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later (server trouble, throttling, timeouts)."""
        return http_status.retryable(self.status)


class TenancyClient:
    """Files cases to the tenancy system; one ``httpx.Client`` per instance, closed with it."""

    def __init__(self, base_url: str, token: SecretStr | None = None, timeout: float = 10.0) -> None:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def __enter__(self) -> TenancyClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def file_case(self, *, idempotency_key: str, payload: dict[str, Any]) -> FilingResponse:
        """POST one case; raise ``TenancyUnavailable`` when no HTTP answer came back."""
        return self._post("/api/v1/cases", idempotency_key=idempotency_key, payload=payload)

    def update_case(self, *, idempotency_key: str, payload: dict[str, Any]) -> FilingResponse:
        """POST one decision on a filed case (named by ``case_ref`` in the payload); raise
        ``TenancyUnavailable`` when no HTTP answer came back."""
        return self._post("/api/v1/case-updates", idempotency_key=idempotency_key, payload=payload)

    def _post(self, path: str, *, idempotency_key: str, payload: dict[str, Any]) -> FilingResponse:
        try:
            resp = self._http.post(path, json=payload, headers={"Idempotency-Key": idempotency_key})
        except httpx.TransportError as err:
            raise TenancyUnavailable(f"{type(err).__name__}: {err}") from err
        try:
            body = resp.json()
        except ValueError:
            body = None
        return FilingResponse(
            status=resp.status_code, body=body if isinstance(body, dict) else None, text=resp.text[:500]
        )

    def find_case(self, *, case_ref: str) -> dict[str, Any] | None:
        """The case the tenancy system holds under anju's ``case_ref`` (``GET /api/v1/cases?case_ref=``),
        with its updates; None when it holds none. Raise ``TenancyUnavailable`` when no usable answer came
        back: then nobody knows, and the caller must not send again yet."""
        cases = self._get_list("/api/v1/cases", {"case_ref": case_ref}, field="cases", what="case lookup")
        found = [c for c in cases if c.get("case_ref") == case_ref]
        return found[0] if found else None

    def changes(self, *, since: int, limit: int = 100) -> list[dict[str, Any]]:
        """Status changes numbered after ``since`` (``GET /api/v1/changes``), oldest first; raise
        ``TenancyUnavailable`` when no usable answer came back."""
        return self._get_list("/api/v1/changes", {"since": since, "limit": limit}, field="changes",
                              what="changes feed")

    def _get_list(self, path: str, params: dict[str, Any], *, field: str, what: str) -> list[dict[str, Any]]:
        """The objects of the list ``field`` of a GET's JSON answer; ``TenancyUnavailable`` (saying
        ``what`` answered) for no answer, another status than 200, no JSON or no such list."""
        try:
            resp = self._http.get(path, params=params)
        except httpx.TransportError as err:
            raise TenancyUnavailable(f"{type(err).__name__}: {err}") from err
        if resp.status_code != 200:
            raise TenancyUnavailable(f"{what} answered HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            body = resp.json()
        except ValueError as err:
            raise TenancyUnavailable(f"{what} answered no JSON: {resp.text[:200]}") from err
        items = body.get(field) if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise TenancyUnavailable(f"{what} answered no list of {field}: {resp.text[:200]}")
        return [c for c in items if isinstance(c, dict)]

    def health(self) -> bool:
        """Whether ``GET /health`` answers ok."""
        try:
            return self._http.get("/health").status_code == 200
        except httpx.TransportError:
            return False
