"""The import rules of ARCHITECTURE.md, checked on the source (AST, no imports executed).

Every ``import`` counts, at module level or inside a function, except those under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("anju", "anju_mqtt", "anju_wire", "device_sims", "edge_agent", "hub", "models")
# The design's top-level folders, installed under the distribution's namespace (anju.hub is hub/, ...):
# pyproject.toml maps them with package-dir, and anju/<name> links to the folder in a checkout.
NAMESPACED = ("device_sims", "edge_agent", "hub", "models")
CLI = "anju.<cli>"  # the command-line modules of anju/ itself (anju.cli, anju.cmd_*, ...)
DEPLOYABLES = {CLI, "anju.device_sims", "anju.edge_agent", "anju.hub"}
# Network, database, broker, web, serial and process I/O: what pure code never touches.
IO = {
    "aiohttp", "amqtt", "anju_mqtt", "asyncio", "fastapi", "http", "httpx", "jinja2", "paho",
    "prometheus_client", "psycopg", "psycopg_pool", "pymodbus", "requests", "serial", "smtplib", "socket",
    "sqlite3", "ssl", "starlette", "subprocess", "urllib", "uvicorn",
}  # fmt: skip
# The storage layer: the API reaches tables only through a domain (cases, auth, audit, tenancy ...).
STORAGE = ("anju.hub.storage", "anju.hub.bulk", "anju.hub.ingest")
# Files over the size limit that predate this test (none left: timeseries.py was split); none may be added.
OVER_500_KNOWN: set[str] = set()
# Cycles between hub domains (hub.X packages) that predate this test (none left); none may be added.
DOMAIN_CYCLES_KNOWN: list[set[str]] = []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] in NAMESPACED:
        parts.insert(0, "anju")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _in_link(path: Path) -> bool:
    """A file reached through one of anju/'s links to a top-level folder (counted once, from the folder)."""
    return any((ROOT / "anju" / name) in path.parents for name in NAMESPACED)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))
            if not _in_link(p)}


def _cli_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "anju" and (len(parts) == 1 or parts[1] not in NAMESPACED)


def _imported(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded = [n for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)]
    skip = {id(n) for node in guarded for child in node.body for n in ast.walk(child)}
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, *([node.module] if node.module else [])])
            subs = [f"{name}.{a.name}" for a in node.names if f"{name}.{a.name}" in modules()]
            yield from subs
            if len(subs) < len(node.names):
                yield name


@cache
def imports_of(module: str) -> frozenset[str]:
    return frozenset(_imported(modules()[module]))


def _ours(name: str) -> str | None:
    """The module of ours that ``name`` is or lies in (None for the standard library and third parties)."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


def graph() -> dict[str, set[str]]:
    return {m: {o for i in imports_of(m) if (o := _ours(i)) and o != m} for m in modules()}


def cycles(g: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []
    for root in g:
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    work.append((w, iter(sorted(g.get(w, ())))))
                elif w in stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    x = stack.pop()
                    comp.add(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    found.append(comp)
    return found


def _under(name: str, prefix: str) -> bool:
    return _cli_module(name) if prefix == CLI else name == prefix or name.startswith(prefix + ".")


def breaches(package: str, forbidden: set[str] | tuple[str, ...]) -> list[str]:
    return sorted(
        f"{m} imports {i}" for m in modules() if _under(m, package)
        for i in imports_of(m) if any(_under(i, f) for f in forbidden)
    )  # fmt: skip


def test_wire_contract_imports_no_io_and_no_deployable() -> None:
    assert breaches("anju_wire", IO | DEPLOYABLES | {"anju.models"}) == []


def test_analytics_import_no_io_and_no_deployable() -> None:
    assert breaches("anju.models", IO | DEPLOYABLES) == []


def test_mqtt_package_serves_every_deployable_and_imports_none() -> None:
    assert breaches("anju_mqtt", DEPLOYABLES | {"anju.models", "psycopg", "fastapi", "pymodbus"}) == []


def test_edge_agent_imports_nothing_of_the_hub() -> None:
    assert breaches("anju.edge_agent", {"anju.hub", "anju.models", "anju.device_sims", CLI}) == []


def test_api_reaches_storage_only_through_a_domain() -> None:
    assert breaches("anju.hub.api", STORAGE) == []


def test_cli_reads_through_a_domain_not_the_api() -> None:
    """``anju`` commands read cases through ``anju.hub.cases`` (queries, schemas), as the API does; the hub
    command serves the API through ``anju.hub.main``, so no CLI module imports ``anju.hub.api`` at all."""
    assert breaches(CLI, ("anju.hub.api",)) == []


def test_no_import_cycles_between_modules() -> None:
    assert cycles(graph()) == []


def test_no_new_import_cycles_between_hub_domains() -> None:
    def domain(m: str) -> str:
        parts = m.split(".")
        if parts[:2] == ["anju", "hub"] and len(parts) > 2:
            return ".".join(parts[:3])
        return ".".join(parts[:2]) if parts[0] == "anju" and not _cli_module(m) else parts[0]

    g: dict[str, set[str]] = {}
    for m, deps in graph().items():
        g.setdefault(domain(m), set()).update(domain(d) for d in deps if domain(d) != domain(m))
    assert [c for c in cycles(g) if not any(c <= known for known in DOMAIN_CYCLES_KNOWN)] == []


def test_the_checks_see_what_they_check() -> None:
    g = graph()
    assert "anju_mqtt" in g["anju.edge_agent.publisher"] and "anju.hub.audit" in g["anju.hub.auth.service"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert breaches("anju.hub.ingest", {"paho"}) != []
    assert "anju.hub.cases.queries" in g["anju.cmd_cases"] and breaches(CLI, ("anju.hub",)) != []


def test_no_new_file_over_500_lines_outside_tests() -> None:
    over = {str(p.relative_to(ROOT)) for p in modules().values()
            if len(p.read_text(encoding="utf-8").splitlines()) > 500}  # fmt: skip
    assert over <= OVER_500_KNOWN


def test_the_design_folders_are_imported_only_under_the_anju_namespace() -> None:
    """``import hub`` would load a second copy of a module beside ``anju.hub`` (and clash with other
    projects' top-level ``hub`` or ``models``): every import names ``anju.<folder>``."""
    bare = []
    for folder in ("anju", "anju_mqtt", "anju_wire", "bench", "device_sims", "edge_agent", "hub", "models",
                   "scripts", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if _in_link(path):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
                bare += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in NAMESPACED]
    assert bare == []
