"""Command-line interface: `cassette-proxy serve`, `run -- CMD` and `drift`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec

from proxy import __version__
from proxy.config import Config, ConfigError, load_config
from proxy.drift import DriftError, read_cassette, render_json, render_table
from proxy.logs import library_logs_to, logging_to, make_logger
from proxy.run import run_child
from proxy.server import CannotListen, serve_forever
from proxy.store import StoreError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cassette-proxy",
        description="Record and replay OpenAI API traffic through SQLite cassettes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the proxy")
    _proxy_options(serve)
    serve.add_argument(
        "--cassette-dir",
        metavar="DIR",
        help="also serve /_c/NAME/v1/... from DIR/NAME.db, one cassette per name",
    )
    serve.add_argument("--host", help="default: 127.0.0.1")
    serve.add_argument("--port", type=int, help="default: 8080")
    run = commands.add_parser(
        "run",
        help="run CMD with OPENAI_BASE_URL pointing at a proxy on a free port",
        usage="%(prog)s [options] -- CMD [ARGS...]",
    )
    _proxy_options(run)
    run.add_argument("--port", type=int, help="default: a free port")
    run.add_argument("child", nargs=argparse.REMAINDER, help="the command to run, after --")
    drift = commands.add_parser(
        "drift", help="list fields, enum values and event types the generated types do not know"
    )
    drift.add_argument("--cassette", metavar="PATH", type=Path, required=True)
    drift.add_argument("--json", action="store_true", help="print a JSON array of items")
    return parser


def _proxy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("record", "replay", "auto"), help="default: record")
    parser.add_argument("--upstream", metavar="URL", help="default: https://api.openai.com")
    parser.add_argument("--cassette", metavar="PATH", help="default: cassettes/default.db")
    parser.add_argument("--config", metavar="FILE", type=Path, help="a TOML config file")
    parser.add_argument(
        "--replay-timing",
        metavar="none|original|FACTOR",
        help="replay delays: none (default), original, or a speed-up factor such as 2",
    )
    parser.add_argument("--log-format", choices=("auto", "console", "json"))


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = os.environ if environ is None else environ
    if args.command == "serve":
        return _serve(args, env)
    if args.command == "drift":
        return _drift(args)
    if args.command == "run":
        return _run(args, env)
    return 2


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    command = args.child[1:] if args.child[:1] == ["--"] else args.child
    if not command:
        print("cassette-proxy run: give the command to run after --", file=sys.stderr)
        return 2
    # The child's own output stays readable: only errors from the proxy, then the summary.
    config = _load(args, env, host="127.0.0.1", port=args.port or 0)
    if config is None:
        return 2
    # The child reaches only `--cassette` (its base URL is /v1, not /_c/<name>/v1): a cassette
    # folder from the environment or a shared config file must not excuse a mistyped path.
    config = msgspec.structs.replace(
        config, server=msgspec.structs.replace(config.server, cassette_dir=None)
    )
    log = make_logger(config.logging.format, "error")
    try:
        with library_logs_to(log):
            return asyncio.run(run_child(config, log, command, env))
    except (StoreError, CannotListen, OSError) as exc:
        return _could_not_run(config, exc)


def _drift(args: argparse.Namespace) -> int:
    try:
        items = read_cassette(args.cassette)
    except DriftError as exc:
        print(f"cassette-proxy: drift: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(render_json(items) + "\n" if args.json else render_table(items))
    return 0


def _load(args: argparse.Namespace, env: Mapping[str, str], **overrides: object) -> Config | None:
    """The effective configuration for a proxy command, or None after printing why not."""
    config_path = args.config or (
        Path(env["CASSETTE_PROXY_CONFIG"]) if env.get("CASSETTE_PROXY_CONFIG") else None
    )
    flags = {
        "mode": args.mode,
        "upstream": args.upstream,
        "cassette": args.cassette,
        "replay_timing": args.replay_timing,
        "log_format": args.log_format,
        **overrides,
    }
    try:
        return load_config(config_path, env, flags)
    except ConfigError as exc:
        print(f"cassette-proxy: config error: {exc}", file=sys.stderr)
        return None


def _serve(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config = _load(args, env, cassette_dir=args.cassette_dir, host=args.host, port=args.port)
    if config is None:
        return 2
    try:
        with (
            logging_to(config.logging.format, config.logging.level) as log,
            library_logs_to(log),
        ):
            asyncio.run(serve_forever(config, log))
    except (StoreError, CannotListen, OSError) as exc:
        return _could_not_run(config, exc)
    return 0


def _could_not_run(config: Config, exc: StoreError | CannotListen | OSError) -> int:
    """One line for what stopped the proxy (a cassette, its socket, another system error), 1."""
    if isinstance(exc, CannotListen):
        where = f"{config.server.host}:{config.server.port}"
        print(
            f"cassette-proxy: cannot listen on {where}: {exc.error.strerror or exc.error}",
            file=sys.stderr,
        )
    else:
        print(f"cassette-proxy: {exc}", file=sys.stderr)
    return 1
