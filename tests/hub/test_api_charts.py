"""The pure parts of the inspector pages: chart layout (gaps are not zeros) and the wording of reasons."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from anju.hub.api.charts import EVIDENCE_SERIES, bar_chart, evidence_charts, format_number, nice_ceiling
from anju.hub.api.i18n import MESSAGES, choose_language, from_accept_language, message
from anju.hub.api.labels import (
    ALERT_KINDS,
    AUDIT_ACTIONS,
    CASE_STATUSES,
    DISMISSAL_REASONS,
    REASONS,
    label,
    quantity,
    reason_comparison,
    reason_text,
)
from anju.hub.cases.schemas import Reason

DAYS = [date(2026, 3, 1) + timedelta(days=i) for i in range(5)]
ELECTRICITY = EVIDENCE_SERIES[0]


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (-3, 1), (0.3, 0.5), (1, 1), (6.8, 10), (11, 20), (2.1, 2.5), (430, 500)]
)
def test_nice_ceiling(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == pytest.approx(ceiling)


def test_unknown_days_are_gaps_and_zero_days_are_bars() -> None:
    chart = bar_chart(ELECTRICITY, days=DAYS, values=[4.0, None, 0.0, None, 8.0])
    assert [g.day for g in chart.gaps] == [DAYS[1], DAYS[3]]
    assert [b.day for b in chart.bars] == [DAYS[0], DAYS[2], DAYS[4]]
    zero = chart.bars[1]
    assert zero.value == 0.0 and zero.height == 1.0  # a visible hairline, unlike a gap
    assert chart.bars[2].height == pytest.approx(chart.plot_height * 8 / 10)
    assert chart.bars[2].y + chart.bars[2].height == pytest.approx(chart.baseline_y)
    assert [t.label for t in chart.ticks] == ["0", "5", "10"]
    assert [x.label for x in chart.x_labels] == ["03-01", "03-03", "03-05"]
    assert chart.missing_days == 2


def test_short_series_are_padded_as_unknown() -> None:
    chart = bar_chart(ELECTRICITY, days=DAYS, values=[1.0, 2.0])
    assert chart.missing_days == 3 and len(chart.bars) == 2


def test_all_unknown_still_draws_an_axis() -> None:
    chart = bar_chart(ELECTRICITY, days=DAYS, values=[None] * 5)
    assert chart.bars == () and chart.missing_days == 5
    assert [t.label for t in chart.ticks] == ["0", "0.5", "1"]


def test_evidence_charts_skip_absent_series() -> None:
    charts = evidence_charts({"electricity": [1.0] * 5, "water": [], "strangers": [0] * 5}, days=DAYS)
    assert [c.key for c in charts] == ["electricity", "strangers"]


def test_numbers_and_reasons_in_plain_words() -> None:
    assert format_number(3.0) == "3" and format_number(0.825) == "0.825" and format_number(123.4) == "123"
    reason = Reason(code="elec", text="electricity at base load", value=0.8, baseline=6.1, unit="kWh/day")
    assert reason_text(reason, "zh") == reason_text(reason, "en") == "electricity at base load"
    assert reason_comparison(reason, "en") == "0.8 kWh/day vs baseline 6.1 kWh/day"
    assert reason_comparison(reason, "zh") == "0.8 千瓦时/天，基线 6.1 千瓦时/天"
    assert reason_comparison(Reason(code="x", text="t", value=2, unit="days"), "en") == "2 days"
    assert reason_comparison(Reason(code="x", text="t"), "zh") == ""
    assert reason_comparison(Reason(text="t", baseline=3.0, unit="kWh/day"), "en") == (
        "unknown vs baseline 3 kWh/day"
    )
    assert reason_comparison(Reason(text="t", baseline=3.0, unit="kWh/day"), "zh") == "未知，基线 3 千瓦时/天"
    assert reason_text(Reason(code="x"), "zh") == "x"  # neither known nor worded: the code itself
    assert label(ALERT_KINDS, "sublet", "zh") == "转租" and label(ALERT_KINDS, "sublet", "en") == "sublet"
    assert label(ALERT_KINDS, "new_kind", "en") == "new_kind"
    assert label(ALERT_KINDS, None, "zh") == "—"


def test_detector_reasons_phrased_from_their_values_in_both_languages() -> None:
    # As models/rules.py words them: the page phrases them anew from code, value, baseline and unit.
    idle = Reason(code="idle_streak", text="Idle for 45 observed days in a row; ...", value=45, baseline=180,
                  unit="days")
    assert reason_text(idle, "zh") == "连续闲置" and reason_text(idle, "en") == "Idle days in a row"
    assert reason_comparison(idle, "zh") == "45 天，法定期限 180 天"
    assert reason_comparison(idle, "en") == "45 days; the legal threshold is 180 days"
    water = Reason(code="water_near_zero", text="...", value=0.004, baseline=0.31, unit="m3/day")
    assert reason_comparison(water, "zh") == "0.004 立方米/天，此前为 0.31 立方米/天"
    assert reason_comparison(water, "en") == "0.004 m³/day vs 0.31 m³/day before"
    share = Reason(code="gate_silent", text="...", value=0.4, baseline=0.6, unit="share of days")
    assert reason_comparison(share, "en") == "40% of days, needs at least 60% of days"
    assert reason_comparison(share, "zh") == "40% 天数占比，至少需要 60% 天数占比"
    peers = Reason(code="peer_electricity", text="...", value=0.31, baseline=5.2, unit="kWh/day")
    assert reason_comparison(peers, "en") == "0.31 kWh/day vs the estate's median 5.2 kWh/day"
    assert reason_comparison(Reason(code="new_lease", text="Lease started on 2026-03-01"), "zh") == ""
    assert quantity(None, "kWh/day", "en") == "unknown" and quantity(2, None, "zh") == "2"
    # Every code and label has both languages, and every message too.
    for table in (REASONS, ALERT_KINDS, CASE_STATUSES, AUDIT_ACTIONS, DISMISSAL_REASONS):
        assert all(texts[0] and texts[1] for texts in table.values())
    assert all(zh and en for zh, en in MESSAGES.values())
    assert message("en", "total.many", n=3) == "3 alerts" and message("zh", "total.many", n=3) == "共 3 条"
    assert message("en", "no.such.key") == "no.such.key"


def test_charts_labelled_in_the_page_language() -> None:
    zh = bar_chart(ELECTRICITY, days=DAYS, values=[1.0, None, 2.0, 3.0, 4.0])
    en = bar_chart(ELECTRICITY, days=DAYS, values=[1.0, None, 2.0, 3.0, 4.0], lang="en")
    assert (zh.title, zh.unit) == ("用电", "千瓦时/天") and (en.title, en.unit) == ("Electricity", "kWh/day")
    assert zh.bars[0].label == "2026-03-01: 1 千瓦时/天" and en.bars[0].label == "2026-03-01: 1 kWh/day"
    strangers = evidence_charts({"strangers": [1] * 5}, days=DAYS, lang="zh")[0]
    assert strangers.unit == "人/天"


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "lang"),
    [
        (None, None, None, "zh"),
        ("en", None, None, "en"),
        ("EN-us", "zh", "zh-CN", "en"),
        ("klingon", "en", None, "en"),
        (None, "zh", "en-US,en;q=0.9", "zh"),
        (None, None, "en-US,en;q=0.9", "en"),
        (None, None, "zh-TW;q=0.8, en;q=0.9", "en"),
        (None, None, "en;q=oops, zh;q=0.5", "zh"),
        (None, None, "*", "zh"),
        (None, None, ",;;q=,", "zh"),
    ],
)
def test_language_choice(query: str | None, cookie: str | None, accept: str | None, lang: str) -> None:
    assert choose_language(query=query, cookie=cookie, accept_language=accept) == lang


def test_accept_language_ranks_by_quality_then_position() -> None:
    assert from_accept_language("fr, en-GB;q=0.7, zh;q=0.7") == "en"
    assert from_accept_language("fr") is None
    assert from_accept_language("x" * 5000) is None
