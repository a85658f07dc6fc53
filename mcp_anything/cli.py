"""`mcp-anything serve | validate | tools`."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import uvicorn

from mcp_anything.config import Config, ConfigError, ConfigSource, load_config
from mcp_anything.logs import configure_logging
from mcp_anything.report import findings_lines, tool_report, tool_report_json

if TYPE_CHECKING:
    from mcp_anything.app import GatewayApp

EXIT_FINDINGS = 1
EXIT_CONFIG = 2
EXIT_STARTUP = 3  # the app's startup failed (the log says why): a worker started again would fail the same way
EXIT_BROKEN_PIPE = 141


def _search_limit(text: str) -> int:
    """`--limit` as search_tools bounds it, so the offline ranking never answers a call that could not be made."""
    from mcp_anything.discovery.catalog import MAX_LIMIT

    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_LIMIT}, not {text!r}")
    return limit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mcp-anything", description="Serve HTTP APIs described by OpenAPI as MCP tools."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the configured groups (with no --config: the bundled demo)")
    serve.add_argument("--config", help="YAML config file; omit to serve the bundled demo")
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.add_argument("--log-format", choices=["json", "console"], default="json")
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes accepting on the port (default 1); more than 1 needs server.sessions.key",
    )

    validate = commands.add_parser(
        "validate",
        help="load the config and every spec; exit 2 on any problem, 1 on findings that change what can be called",
    )
    validate.add_argument("--config", required=True)
    validate.add_argument("--strict", action="store_true", help="exit 1 on any finding")

    tools = commands.add_parser("tools", help="print each group's tools without serving")
    tools.add_argument("--config", required=True)
    tools.add_argument("--group", help="only this group")
    tools.add_argument("--json", action="store_true", help="machine-readable output, full tool definitions")
    tools.add_argument(
        "--report",
        action="store_true",
        help="also report what each tool approximates, its definition size and what was cut to fit",
    )
    tools.add_argument("--search", metavar="QUERY", help="rank the tools for QUERY as search_tools would, offline")
    tools.add_argument("--limit", type=_search_limit, default=10, help="with --search: how many tools (default 10)")

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        status = _validate(args) if args.command == "validate" else _tools(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, rather than at exit
        return status
    except ConfigError as exc:
        return _config_errors(exc)
    except BrokenPipeError:
        return _reader_went_away()


def _config_errors(exc: ConfigError) -> int:
    for problem in exc.problems:
        print(f"config error: {problem}", file=sys.stderr)
    return EXIT_CONFIG


def _reader_went_away() -> int:
    """The reader of stdout (`| head`) closed the pipe: stop quietly, as Unix tools do.

    Output still buffered would fail again when the interpreter flushes stdout at exit, so stdout
    is pointed at /dev/null first. 141 is what a shell reports for a tool ended by SIGPIPE.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def _serve(args: argparse.Namespace) -> int:
    if args.workers == 1:
        return _serve_config(args, None)
    from mcp_anything.workers import shared_metrics_directory

    # Before anything imports prometheus-client: it reads the directory once, at import.
    with shared_metrics_directory() as metrics_dir:
        return _serve_config(args, metrics_dir)


def _serve_config(args: argparse.Namespace, metrics_dir: str | None) -> int:
    from mcp_anything.app import create_app

    mounts: dict[str, Any] = {}
    source = None
    if args.config:
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        source = ConfigSource(Path(args.config), overrides)
        config = source.load()
    else:
        from mcp_anything.demo import MOUNT, demo_api, demo_config

        config = demo_config(args.host or "127.0.0.1", args.port or 8080)
        mounts[MOUNT] = demo_api()
        print(f"No --config given: serving the bundled demo bookshop at {config.server.base_url}/mcp", file=sys.stderr)
    _check_workers(config, args.workers)
    try:
        configure_logging(args.log_format, args.log_level, config.audit_destination)
    except OSError as exc:
        problem = f"server.audit_log: cannot open {config.audit_destination}: {exc.strerror or exc}"
        raise ConfigError([problem]) from None
    if args.workers == 1:
        return _serve_one(create_app(config, mounts=mounts, source=source), config)
    from mcp_anything.workers import Supervisor, listening_socket

    try:
        sock = listening_socket(config.server.host, config.server.port)
    except OSError as exc:
        raise ConfigError([f"server.port: cannot listen on {config.server.base_url}: {exc.strerror or exc}"]) from None
    # Each worker builds its own app after the fork: its own event loop, pools, caches and breakers.

    def worker() -> int:
        try:
            return _serve_one(create_app(config, mounts=mounts, source=source), config, sock)
        except ConfigError as exc:
            return _config_errors(exc)

    return Supervisor(args.workers, worker, fatal=(EXIT_CONFIG, EXIT_STARTUP), metrics_dir=metrics_dir).run()


def _check_workers(config: Config, workers: int) -> None:
    problems = []
    if workers > 1 and config.server.sessions.key is None:
        problems.append(
            f"server.sessions.key: required with --workers {workers}: without it each worker seals sessions with a "
            "key of its own, and a session's next request, taken by another worker, would be refused"
        )
    if workers > 1 and config.server.metrics.port is not None:
        problems.append(
            f"server.metrics.port: cannot be used with --workers {workers} (every worker would listen on it); "
            "leave it out, or run one worker per replica and scale replicas"
        )
    if problems:
        raise ConfigError(problems)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value}")
    return number


def _serve_one(app: GatewayApp, config: Config, sock: socket.socket | None = None) -> int:
    """One server process (the only one, or one worker) until it has drained."""
    from mcp_anything.server.guard import guarded_protocol

    server = _Server(
        app,
        uvicorn.Config(
            app,
            host=config.server.host,
            port=config.server.port,
            log_level="warning",
            log_config=None,  # uvicorn's own config would close and replace the handlers set up above
            access_log=False,
            lifespan="on",
            loop="uvloop",
            http=guarded_protocol(config.server.limits),  # httptools, with `server.limits` enforced
            # Annotated as int, but uvicorn only hands it to asyncio.wait_for: fractions of a second work.
            timeout_graceful_shutdown=config.server.shutdown_timeout,  # type: ignore[arg-type]
        ),
    )
    # uvicorn shuts down gracefully on Ctrl-C, then raises the signal again: not an error worth a traceback.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=None if sock is None else [sock])
    return 0 if server.started else EXIT_STARTUP


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app when shutdown starts (so event streams end and calls can finish)."""

    def __init__(self, app: GatewayApp, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._app.begin_shutdown()
        await super().shutdown(sockets)


def _load(path: str) -> tuple[Config, Any]:
    from mcp_anything.app import load_tools

    config = load_config(path)
    return config, load_tools(config)


def _validate(args: argparse.Namespace) -> int:
    from mcp_anything.app import build_gateway
    from mcp_anything.script_warnings import script_warnings

    config = load_config(args.config)
    gateway = build_gateway(config)
    for warning in script_warnings(config):
        print(f"warning: {warning}", file=sys.stderr)
    findings = []
    for name, spec in gateway.specs.items():
        skipped = f", {len(spec.skipped)} skipped" if spec.skipped else ""
        print(f"upstream {name}: {len(spec.tools)} tools from {spec.operations} operations{skipped} -> {spec.base_url}")
        for operation, reason in spec.skipped:
            print(f"  skipped {operation}: {reason}")
        for line in findings_lines(spec.findings):
            print(line)
        findings += spec.findings
    for group in gateway.groups:
        filtered = f", {len(group.filtered)} with response filters" if group.filtered else ""
        print(f"group {group.config.name}: {len(group.tools)} tools at {group.resource_url}{filtered}")
    for warning in config.warnings():
        print(f"config warning: {warning}", file=sys.stderr)
    failing = [f for f in findings if f.changes_calls or args.strict]
    if failing:
        what = "finding(s)" if args.strict else "finding(s) that change what can be called"
        print(f"config loads, but with {len(failing)} {what}", file=sys.stderr)
        return EXIT_FINDINGS
    print(f"config OK ({len(findings)} finding(s))" if findings else "config OK")
    return 0


def _tools(args: argparse.Namespace) -> int:
    config, specs = _load(args.config)
    groups = [g for g in config.groups if args.group in (None, g.name)]
    if not groups:
        print(f"no group named {args.group!r}; groups: {[g.name for g in config.groups]}", file=sys.stderr)
        return EXIT_CONFIG
    if args.search is not None:
        return _search(args, groups, specs)
    if args.json and args.report:
        _print_json(tool_report_json(groups, specs))
        return 0
    if args.json:
        out = {
            g.name: [
                {**t.definition, "x-mcp-upstream": t.upstream, "x-mcp-method": t.method, "x-mcp-path": t.path}
                for u in g.upstreams
                for t in specs[u].tools
            ]
            for g in groups
        }
        _print_json(out)
        return 0
    for group in groups:
        print(f"{group.name} ({group.endpoint}):")
        for upstream in group.upstreams:
            for tool in specs[upstream].tools:
                summary = tool.description.splitlines()[0] if tool.description else ""
                print(f"  {tool.name:<40} {tool.method:<6} {tool.path:<30} {summary[:80]}")
    if args.report:
        print()
        print("\n".join(tool_report(groups, specs)))
    return 0


def _search(args: argparse.Namespace, groups: list[Any], specs: dict[str, Any]) -> int:
    """The ranking search_tools gives a caller who may use every tool of the group, offline."""
    from mcp_anything.discovery.index import SearchIndex

    results: dict[str, list[dict[str, Any]]] = {}
    for group in groups:
        tools = {t.name: t for u in group.upstreams for t in specs[u].tools}
        found = SearchIndex.build(list(tools.values())).search(args.search, limit=args.limit)
        results[group.name] = [
            {
                "name": name,
                "score": round(score, 4),
                "method": tools[name].method,
                "path": tools[name].path,
                "summary": tools[name].description.split("\n", 1)[0][:80],
            }
            for name, score in found
        ]
    if args.json:
        _print_json({"query": args.search, "groups": results})
        return 0
    for group in groups:
        print(f"{group.name}: {args.search!r}")
        if not results[group.name]:
            print("  no tool matches")
        for rank, hit in enumerate(results[group.name], 1):
            print(
                f"  {rank:>2}. {hit['score']:>8.3f}  {hit['name']:<40} {hit['method']:<6} {hit['path']:<30}"
                f" {hit['summary']}"
            )
    return 0


def _print_json(document: Any) -> None:
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    sys.exit(main())
