"""Reasons agree with their charts (issue 14, item 7): every number a reason shows is taken from the series
the chart beside it draws; evidence and context apart; nothing only on hover; the score as a rank; ages
in data days."""

from __future__ import annotations

import re
from datetime import date
from statistics import median

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from anju.hub.api.charts import EVIDENCE_SERIES, bar_chart
from anju.hub.api.labels import reason_comparison
from anju.hub.api.reason_figures import shown_reason, shown_reasons
from anju.hub.cases.schemas import Evidence, Reason
from tests.hub import test_api
from tests.hub.test_api import DAYS, vacancy_evidence

client, seeded = test_api.client, test_api.seeded  # the seeded hub's fixtures

SPEC = {s.key: s for s in EVIDENCE_SERIES}


def numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"\d+(?:\.\d+)?", text)]


@pytest.mark.parametrize("window_start", [DAYS[7], DAYS[10], DAYS[0]])
def test_a_reasons_figures_are_the_charts_medians(window_start: date) -> None:
    evidence = Evidence.model_validate(vacancy_evidence())
    detector = Reason(code="electricity_base_load", value=0.0, baseline=0.0, unit="kWh/day")  # not charted
    shown = shown_reason(detector, evidence, window_start=window_start)
    chart = bar_chart(SPEC["electricity"], days=evidence.days, values=evidence.electricity, mark=window_start)
    inside = [b.value for b in chart.bars if b.day >= window_start]
    before = [b.value for b in chart.bars if b.day < window_start]
    assert shown.value == pytest.approx(median(inside))
    assert shown.baseline == (pytest.approx(median(before)) if before else None)
    assert (chart.mark_x is None) == (window_start == DAYS[0])
    text = reason_comparison(shown, "zh")
    assert numbers(text) == pytest.approx([round(median(inside), 3)] + ([round(median(before), 3)] if before
                                                                         else []), abs=0.05)
    entries = shown_reason(Reason(code="no_tenant_entries", value=9, baseline=9, unit="days"), evidence,
                           window_start=window_start)
    days_in = [d for d in evidence.days if d >= window_start]
    assert entries.value == sum(1 for d, v in zip(evidence.days, evidence.tenant_entries, strict=True)
                                if d >= window_start and v)
    assert (entries.model_extra or {})["days_of"] == len(days_in)


def test_unknown_codes_and_uncharted_reasons_keep_the_detectors_figures() -> None:
    evidence = Evidence.model_validate(vacancy_evidence())
    idle = Reason(code="idle_streak", value=40, baseline=180, unit="days")
    assert shown_reason(idle, evidence, window_start=DAYS[7]) == idle
    lived = shown_reasons([Reason(code="electricity_in_use"), Reason(code="recurring_strangers"), idle],
                          evidence, window_start=DAYS[7])
    assert [r.code for r in lived.evidence] == ["recurring_strangers", "idle_streak"]
    assert [r.code for r in lived.context] == ["electricity_in_use"]
    assert [r.code for r in lived.top] == ["recurring_strangers"] and lived.more == 2


def bars(html: str, series: str) -> list[tuple[date, float]]:
    svg = re.search(rf'<svg class="chart-svg" data-series="{series}".*?</svg>', html, re.S)
    assert svg is not None
    return [(date.fromisoformat(d), float(v)) for d, v in
            re.findall(r'<rect class="bar"[^>]*><title>(\d{4}-\d\d-\d\d): ([\d.]+)', svg.group(0))]


def test_the_case_page_states_what_its_charts_draw(client: httpx.Client, seeded: dict[str, int],
                                                    database_url: str) -> None:
    with psycopg.connect(database_url) as conn:  # a sublet alert that also says the flat is lived in
        conn.execute("UPDATE alerts SET reasons = reasons || %s WHERE id = %s",
                     (Jsonb([{"code": "electricity_in_use", "text": "electricity in normal use", "value": 5.5,
                              "baseline": 5.0, "unit": "kWh/day"}]), seeded["sublet"]))
    html = client.get(f"/alerts/{seeded['vacancy']}").text
    start = DAYS[7]  # the seeded window
    elec = bars(html, "electricity")
    li = re.search(r'<li data-code="electricity_base_load"[^>]*>(.*?)</li>', html, re.S)
    assert li is not None
    shown = numbers(re.sub(r"<[^>]+>", "", li.group(1)))
    assert shown == [median(v for d, v in elec if d >= start), median(v for d, v in elec if d < start)]
    entries = bars(html, "tenant_entries")
    li = re.search(r'<li data-code="no_tenant_entries"[^>]*>(.*?)</li>', html, re.S)
    assert li is not None
    text = re.sub(r"<[^>]+>", "", li.group(1))
    inside = [v for d, v in entries if d >= start]
    before = [v for d, v in entries if d < start]
    assert f"{len(inside)} 天中 {sum(1 for v in inside if v)} 天有进门" in text
    assert f"此前为 {len(before)} 天中 {sum(1 for v in before if v)} 天有进门" in text
    assert html.count('class="window-start"') == 5  # the window's start on every chart
    # Nothing is said only on hover: the reasons carry no title, and no English on the Chinese page.
    assert not re.search(r'<li data-code="[^"]*"[^>]*title=', html)
    assert "median electricity" not in html
    # The score as a rank among the estate's open alerts; the age in data days to the as-of day.
    assert re.search(r'<span class="rank" data-rank="1" data-of="2">在 E01 的 2 条待处理线索中排第 1', html)
    assert '<span class="data-age" data-days="7">(数据截至 2026-03-28；首次标记后 7 个数据日)</span>' in html
    sublet = client.get(f"/alerts/{seeded['sublet']}").text
    evidence_part, context_part = sublet.split('<h3 class="reasons-context">', 1)
    assert 'data-code="recurring_strangers"' in evidence_part
    assert 'data-code="electricity_in_use"' not in evidence_part
    assert context_part.startswith("背景情况（不是线索依据）")
    assert 'data-code="electricity_in_use"' in context_part
