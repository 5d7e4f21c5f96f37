"""What a case is made of, as the pages, the API and the household read it: an alert's reasons and the
daily series behind it, frozen into the case's evidence when it opens."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class Reason(BaseModel):
    """One reason an alert was raised: a signal in plain words, with its value against the baseline."""

    model_config = ConfigDict(extra="allow")

    code: str = ""
    text: str = ""
    value: float | None = None
    baseline: float | None = None
    unit: str | None = None


class Evidence(BaseModel):
    """The daily series behind an alert; ``None`` marks a day without data (unknown, not zero)."""

    model_config = ConfigDict(extra="allow")

    days: list[date] = Field(default_factory=list)
    electricity: list[float | None] = Field(default_factory=list)
    water: list[float | None] = Field(default_factory=list)
    gas: list[float | None] = Field(default_factory=list)
    tenant_entries: list[float | None] = Field(default_factory=list)
    strangers: list[float | None] = Field(default_factory=list)
