"""The pure parts of the inspector pages: chart layout (gaps are not zeros) and the wording of reasons."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from hub.api.charts import EVIDENCE_SERIES, bar_chart, evidence_charts, format_number, nice_ceiling
from hub.api.labels import ALERT_KINDS, bilingual, reason_comparison
from hub.api.models import Reason

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
    assert reason_comparison(reason) == "0.8 kWh/day vs baseline 基线 6.1 kWh/day"
    assert reason_comparison(Reason(code="x", text="t", value=2, unit="days")) == "2 days"
    assert reason_comparison(Reason(code="x", text="t")) == ""
    assert reason_comparison(Reason(text="t", baseline=3.0, unit="kWh/day")) == (
        "unknown 未知 vs baseline 基线 3 kWh/day"
    )
    assert bilingual(ALERT_KINDS, "sublet") == "转租 sublet"
    assert bilingual(ALERT_KINDS, "new_kind") == "new_kind"
    assert bilingual(ALERT_KINDS, None) == "—"
