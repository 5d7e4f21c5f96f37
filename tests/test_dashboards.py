"""Every SQL query of every Grafana dashboard runs against a real database with the hub's schema."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.hub.test_api import create_schema, seed

DASHBOARDS = sorted((Path(__file__).resolve().parents[1] / "dashboards").glob("*.json"))
DATASOURCE_UIDS = {"anju-postgres"}

# Grafana's PostgreSQL macros and our template variables, replaced with what Grafana would send.
MACROS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\$__timeFilter\(([^)]+)\)"), r"\1 BETWEEN now() - interval '30 days' AND now()"),
    (re.compile(r"\$__timeFrom\(\)"), "(now() - interval '30 days')"),
    (re.compile(r"\$__timeTo\(\)"), "now()"),
    (re.compile(r"\$__interval"), "'1 hour'::interval"),
    (re.compile(r"\$\{estate(:[a-z]+)?\}|\$estate\b"), "'E01','E02'"),
]


def raw_sql(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every ``rawSql`` in a dashboard (and template variable queries), with where it was found."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "rawSql" or (key == "query" and isinstance(value, str) and "SELECT" in value.upper()):
                yield f"{where}.{key}", value
            else:
                yield from raw_sql(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            label = item.get("title") or item.get("name") or i if isinstance(item, dict) else i
            yield from raw_sql(item, f"{where}[{label}]")


def expand(sql: str) -> str:
    """Replace Grafana macros and variables; fail on any left over."""
    for pattern, replacement in MACROS:
        sql = pattern.sub(replacement, sql)
    left = re.findall(r"\$[\w{]+", sql)
    assert not left, f"macro or variable without a test substitute: {left}"
    return sql


def load(path: Path) -> dict[str, Any]:
    """A dashboard as JSON."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_there_is_a_dashboard() -> None:
    assert [p.name for p in DASHBOARDS] == ["anju_overview.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_shape(path: Path) -> None:
    dash = load(path)
    assert dash["uid"] and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] in DATASOURCE_UIDS, panel["title"]
        for t in panel["targets"]:
            assert t["datasource"]["uid"] in DATASOURCE_UIDS and t["rawQuery"] is True, panel["title"]
    titles = " ".join(p["title"] for p in dash["panels"])
    wanted_titles = (
        "Readings stored per hour", "Access events per hour", "Open alerts by kind", "Dead letters",
        "Edge agents",
    )
    for wanted in wanted_titles:
        assert wanted in titles


def run_queries(path: Path, conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Every query of a dashboard run on ``conn``, by where it was found; a failing one fails the test."""
    queries = list(raw_sql(load(path)))
    assert len(queries) >= 7
    results: dict[str, list[tuple[Any, ...]]] = {}
    for where, sql in queries:
        try:
            rows = conn.execute(expand(sql)).fetchall()
        except psycopg.Error as err:
            pytest.fail(f"{path.name} {where}: {err}\n{sql}")
        results[where] = rows
    return results


def check_seeded_results(results: dict[str, list[tuple[Any, ...]]]) -> None:
    """What the overview dashboard shows of ``seed``'s rows."""
    by_title = {where.split("]")[0].removeprefix(".panels["): rows for where, rows in results.items()}
    assert sorted(by_title["Open alerts by kind 待处理线索（按类型）"]) == [("sublet", 1), ("vacancy", 1)]
    assert [r[0] for r in by_title["Edge agents 边缘网关状态"]] == ["E01-gw1"]
    assert by_title["Dead letters 无法处理的消息"] == [(1,)]
    assert by_title["Cases and filing 案件与报送"] == [(2, 1, 1, 0)]
    hourly = by_title["Readings stored per hour 每小时入库读数"]
    assert sum(r[2] for r in hourly) == 5  # seeded readings arrive now, inside the time range


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_runs(path: Path, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        seed(conn)
        results = run_queries(path, conn)
    if path.name == "anju_overview.json":
        check_seeded_results(results)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_queries_read_only_the_grafana_views(path: Path) -> None:
    # The deploy's Grafana role may read schema grafana and nothing else (tests/deploy/test_grafana_role.py).
    for where, sql in raw_sql(load(path)):
        # A name after FROM or JOIN that is not a function call (as in extract(epoch FROM now() - ...)).
        for table in re.findall(r"\b(?:FROM|JOIN)\s+([\w.]+)\b(?!\s*\()", sql, flags=re.IGNORECASE):
            assert table.startswith("grafana."), f"{path.name} {where} reads {table}, not a grafana view"
