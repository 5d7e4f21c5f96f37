"""``anju`` console script: dispatches to the deployables' own entry points."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys

from anju.logs import FORMATS, configure_logging

# Further command groups, each a module with ``register(subparsers, sim_subparsers)`` and
# ``run(args) -> int | None`` (None: not one of its commands), so that each area owns its commands.
COMMAND_MODULES = ("anju.cmd_data", "anju.cmd_edge", "anju.cmd_cases", "anju.cmd_models", "anju.cmd_faces",
                   "anju.cmd_site", "anju.cmd_household", "anju.cmd_filings", "anju.cmd_status")  # fmt: skip


class HelpWithDefaults(argparse.HelpFormatter):
    """Help that states each option's default (where it has one the help does not already name)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        empty = isinstance(default, frozenset | set | list | tuple | dict) and not default
        if default in (None, False, argparse.SUPPRESS) or empty or "default" in text:
            return text
        if not action.option_strings:
            return text
        return f"{text} (default: %(default)s)".lstrip()


def _with_defaults(parser: argparse.ArgumentParser) -> None:
    """Every parser and subparser formats its help with ``HelpWithDefaults``."""
    parser.formatter_class = HelpWithDefaults
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _with_defaults(child)


def _version() -> str:
    try:
        return importlib.metadata.version("anju")
    except importlib.metadata.PackageNotFoundError:  # a source tree run without installing
        from anju import __version__

        return __version__


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="anju", description="anju (安居): vacancy and subletting detection")
    p.add_argument("--version", action="version", version=f"anju {_version()}")
    p.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    p.add_argument("--log-format", choices=FORMATS, default=None,
                   help="log lines as text or JSON objects; default: ANJU_LOG_FORMAT, else text")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the whole pipeline on simulated estates")
    demo.add_argument("--headless", action="store_true", help="exit after the simulated period")
    demo.add_argument("--estates", type=int, default=2, help="simulated estates")
    demo.add_argument("--units", type=int, default=40, help="units per estate (at most 46)")
    demo.add_argument("--days", type=int, default=90, help="simulated days")
    demo.add_argument("--wall-seconds", type=float, default=150.0, help="real seconds for the period")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the simulated households")
    demo.add_argument("--port", type=int, default=8000, help="inspector page port")

    hub = sub.add_parser("hub", help="run the hub: ingest, detection, filing, API and inspector page")
    hub.add_argument("--settings", type=str, default=None, help="YAML settings file (environment overrides)")
    hub.add_argument("--role", default=None,
                     help="what this hub runs: ingest, pipeline, api, a comma-separated mix, or all; any"
                          " number of hubs of each may run (default: the role setting, ANJU_ROLE, else all)")

    agent = sub.add_parser("agent", help="run an estate's edge agent")
    agent.add_argument("--config", help="site file (YAML); required to run the agent")
    agent.add_argument("--drain", action="store_true", help="read no device; publish the outbox, then exit")

    sim = sub.add_parser("sim", help="simulators")
    simsub = sim.add_subparsers(dest="sim_command", required=True)
    est = simsub.add_parser("estate", help="one estate's Modbus meters and face gates")
    est.add_argument("--estate", required=True, help="estate id, e.g. E01")
    est.add_argument("--units", type=int, default=40, help="units in the estate")
    est.add_argument("--days", type=int, default=90, help="simulated days")
    est.add_argument("--seed", type=int, default=7, help="random seed of the simulated households")
    est.add_argument("--start", required=True, help="simulated start, ISO 8601 with offset")
    est.add_argument("--modbus-host", default="127.0.0.1", help="address the meters' Modbus TCP server binds")
    est.add_argument("--modbus-port", type=int, required=True, help="port of the meters' Modbus TCP server")
    est.add_argument("--mqtt-url", required=True, help="broker the simulated face gates publish to")
    est.add_argument("--origin-wall", type=float, required=True, help="wall time (epoch s) of --start")
    est.add_argument("--speed", type=float, required=True, help="simulated seconds per wall second")
    ten = simsub.add_parser("tenancy", help="the city tenancy-system stand-in")
    ten.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ten.add_argument("--port", type=int, default=8090, help="port to listen on")
    ten.add_argument("--ignore-idempotency-key", action="store_true",
                     help="behave like a city system that ignores Idempotency-Key (default: honour it)")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, simsub)
    _with_defaults(p)
    return p


def _run_hub(settings_file: str | None, role: str | None = None) -> int:
    """The hub, with its audit key checked first and the audit checkpointer beside it.

    Outside development no key means no start: a hub that generated one would write a chain no one could
    verify after the next deploy."""
    from pathlib import Path

    from anju.hub.audit.checkpoint import CheckpointLog
    from anju.hub.audit.checkpointer import AuditCheckpointer
    from anju.hub.audit.errors import AuditKeyError
    from anju.hub.audit.keys import AuditSettings
    from anju.hub.audit.store import current_key
    from anju.hub.main import run_hub
    from anju.hub.settings import HubSettings, parse_roles
    from anju.hub.storage.embedded import resolve_database_url

    settings = HubSettings.load(Path(settings_file) if settings_file else None)
    try:
        roles = parse_roles(role) if role is not None else settings.roles()
    except ValueError as err:
        print(f"anju hub: --role: {err}", file=sys.stderr)
        return 2
    audit = AuditSettings()
    try:
        key = current_key()
    except AuditKeyError as err:
        print(f"anju hub: {err}", file=sys.stderr)
        return 2
    checkpointer = AuditCheckpointer(
        database_url=resolve_database_url(settings.database_url, settings.home),
        checkpoints=CheckpointLog(audit.checkpoint_path()), key=key,
        interval_s=audit.audit_checkpoint_interval_s,
    )
    checkpointer.start()
    try:
        return run_hub(settings, roles=roles)
    finally:
        checkpointer.stop()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit status."""
    args = _build_parser().parse_args(argv)
    configure_logging(verbose=args.verbose, fmt=args.log_format)
    if args.command == "demo":
        from anju.demo import DemoOptions, run_demo

        return run_demo(
            DemoOptions(
                headless=args.headless,
                estates=args.estates,
                units=args.units,
                days=args.days,
                wall_seconds=args.wall_seconds,
                seed=args.seed,
                http_port=args.port,
            )
        )
    if args.command == "hub":
        return _run_hub(args.settings, args.role)
    if args.command == "agent" and getattr(args, "agent_command", None) is None:
        if args.config is None:
            print("anju agent: --config is required", file=sys.stderr)
            return 2
        from anju.edge_agent.agent import main as agent_main

        return agent_main(["--config", args.config, *(["--drain"] if args.drain else [])])
    if args.command == "sim" and args.sim_command == "estate":
        from anju.simrun import run_estate

        return run_estate(args)
    if args.command == "sim" and args.sim_command == "tenancy":
        from anju.device_sims.tenancy import run_tenancy

        run_tenancy(args.host, args.port, honour_keys=not args.ignore_idempotency_key)
        return 0
    for name in COMMAND_MODULES:
        status = importlib.import_module(name).run(args)
        if status is not None:
            return int(status)
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
