"""Configuration: strict msgspec Structs decoded from TOML, then environment and flags on top.

Precedence is flags > environment (`CASSETTE_PROXY_*`) > config file > defaults. Every layer is merged
into one plain dict before a single `msgspec.convert`, so a wrong key or type is reported the same way
whichever layer it came from, naming the key and where it was set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec
from yarl import URL

from proxy.headers import NOT_STORED

Mode = Literal["record", "replay", "auto"]
LogFormat = Literal["auto", "console", "json"]
RepeatPolicy = Literal["last", "error"]

ENV_PREFIX = "CASSETTE_PROXY_"
# Statuses the OpenAI SDKs retry on; a replay miss must never use one of them.
RETRIED_STATUSES = frozenset({408, 409, 429})


class ConfigError(Exception):
    """A configuration problem a user can fix; the message names the key and the source."""


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8080
    mode: Mode = "record"
    cassette: str = "cassettes/default.db"
    # When set, /_c/<name>/v1/... is served from <cassette_dir>/<name>.db (one cassette per name).
    cassette_dir: str | None = None
    max_body_size: int = 64 * 1024 * 1024
    shutdown_grace: float = 30.0
    admin_allow_remote: bool = False


class UpstreamConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str = "https://api.openai.com"
    connect_timeout: float = 10.0
    read_timeout: float = 600.0


class ReplayConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "none", "original", or a speed factor: a TOML number or its text (flags, environment).
    timing: str | float = "none"
    repeat: RepeatPolicy = "last"
    miss_status: int = 400


class MatchingConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    ignore_json_paths: list[str] = msgspec.field(default_factory=list)
    ignore_query_params: list[str] = msgspec.field(default_factory=list)
    headers: list[str] = msgspec.field(default_factory=list)


class LoggingConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    format: LogFormat = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    upstream: UpstreamConfig = msgspec.field(default_factory=UpstreamConfig)
    replay: ReplayConfig = msgspec.field(default_factory=ReplayConfig)
    matching: MatchingConfig = msgspec.field(default_factory=MatchingConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)


# Settings reachable from the environment and the command line: name → (section, key).
OVERRIDABLE: dict[str, tuple[str, str]] = {
    "mode": ("server", "mode"),
    "upstream": ("upstream", "url"),
    "cassette": ("server", "cassette"),
    "cassette_dir": ("server", "cassette_dir"),
    "host": ("server", "host"),
    "port": ("server", "port"),
    "replay_timing": ("replay", "timing"),
    "log_format": ("logging", "format"),
}


def parse_timing(value: str | float) -> float | None:
    """`none` → None (no delays), `original` → 1.0, a number → that speed-up factor's inverse.

    A factor of 2 replays twice as fast as recorded (delays halved); 0.5 twice as slow. The
    factor may be a number or its text, with the same checks.
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "none":
            return None
        if text == "original":
            return 1.0
        try:
            factor = float(text)
        except ValueError:
            raise ValueError(
                "replay timing must be 'none', 'original' or a positive speed factor, "
                f"not {value!r}"
            ) from None
    else:
        factor = float(value)
    if not factor > 0:
        raise ValueError(f"replay timing factor must be positive, not {value!r}")
    return 1.0 / factor


def load_config(
    path: Path | None,
    environ: Mapping[str, str],
    flags: Mapping[str, Any],
    flag_names: Mapping[str, str] | None = None,
) -> Config:
    """Build the effective configuration; raises ConfigError with the offending key and source.

    `flag_names`: how the caller's users spell a flag, where it is not `--<name>` (the pytest
    plugin's `--cassette-upstream`), so that an error names the option they gave.
    """
    raw: dict[str, Any] = {}
    sources: dict[tuple[str, str], str] = {}
    if path is not None:
        raw = _read_toml(path)
        _check_sections(raw, path)
        for section, values in raw.items():
            if isinstance(values, dict):
                for key in values:
                    sources[(section, key)] = str(path)
    for name, (section, key) in OVERRIDABLE.items():
        env_name = ENV_PREFIX + name.upper()
        # Set but empty (`CASSETTE_PROXY_HOST=` in a .env file or a CI matrix) means unset, as it
        # does for CASSETTE_PROXY_CONFIG; taken literally, an empty host listens everywhere.
        if environ.get(env_name):
            raw.setdefault(section, {})[key] = environ[env_name]
            sources[(section, key)] = f"environment variable {env_name}"
    for name, value in flags.items():
        if value is None:
            continue
        section, key = OVERRIDABLE[name]
        raw.setdefault(section, {})[key] = value
        sources[(section, key)] = (flag_names or {}).get(name) or f"--{name.replace('_', '-')}"
    try:
        # strict=False lets environment strings such as "8081" become ints.
        config = msgspec.convert(raw, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe(exc, sources, path)) from None
    _validate(config, sources, path)
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        raw = msgspec.toml.decode(data)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "TOML files must be UTF-8"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a TOML table at the top level")
    return raw


def _check_sections(raw: dict[str, Any], path: Path) -> None:
    """Every section the file sets is a table: `upstream = "http://…"` is a plausible slip for
    `[upstream]` + `url = …`, and the environment and flags write their keys into the section."""
    for field in msgspec.structs.fields(Config):
        value = raw.get(field.name)
        if value is None or isinstance(value, dict):
            continue
        first = msgspec.structs.fields(field.type)[0].name
        example = f"{first} = {json.dumps(value)}" if isinstance(value, str) else f"{first} = …"
        raise ConfigError(
            f"{path}: `{field.name}` must be a table, not {_toml_kind(value)}; write "
            f"`[{field.name}]` on a line of its own with its keys below it, e.g. `{example}` "
            "(config.example.toml lists every key)"
        )


def _toml_kind(value: object) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "a date or time"


_PATH_IN_ERROR = re.compile(r"at `\$((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*)`")
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")


def _describe(
    exc: msgspec.ValidationError, sources: dict[tuple[str, str], str], path: Path | None
) -> str:
    message = str(exc)
    located = _PATH_IN_ERROR.search(message)
    key_path = located.group(1).lstrip(".") if located else ""
    unknown = _UNKNOWN_FIELD.search(message)
    if unknown:
        key = f"{key_path}.{unknown.group(1)}" if key_path else unknown.group(1)
        where = str(path) if path else "configuration"
        return (
            f"{where}: unknown key `{key}`; remove it or fix its spelling "
            "(config.example.toml lists every key)"
        )
    parts = key_path.split(".")
    source = sources.get((parts[0], parts[1])) if len(parts) >= 2 else None
    where = source or (str(path) if path else "configuration")
    detail = message.split(" - at ")[0]
    return f"{where}: bad value for `{key_path}`: {detail}"


def _validate(config: Config, sources: dict[tuple[str, str], str], path: Path | None) -> None:
    def fail(section: str, key: str, problem: str) -> ConfigError:
        where = sources.get((section, key)) or (str(path) if path else "configuration")
        return ConfigError(f"{where}: bad value for `{section}.{key}`: {problem}")

    try:
        parse_timing(config.replay.timing)
    except ValueError as exc:
        raise fail("replay", "timing", str(exc)) from None
    status = config.replay.miss_status
    if not 400 <= status <= 499 or status in RETRIED_STATUSES:
        raise fail(
            "replay", "miss_status", "must be a 4xx status the SDKs do not retry (not 408/409/429)"
        )
    if not 0 <= config.server.port <= 65535:
        raise fail("server", "port", "must be between 0 and 65535")
    if config.server.max_body_size <= 0:
        raise fail("server", "max_body_size", "must be a positive number of bytes")
    _validate_upstream_url(config.upstream.url, fail)
    for header in config.matching.headers:
        # Never stored, such a header would make every replay miss, and a credential's value
        # would show in the miss message.
        if header.lower() in NOT_STORED:
            raise fail(
                "matching",
                "headers",
                f"{header!r} is never stored (a credential, or a connection header), so no "
                "recording could match it; to keep recordings apart by API key, give each key "
                "a cassette of its own",
            )
    if not config.server.host:
        raise fail(
            "server",
            "host",
            "must not be empty: 127.0.0.1 (the default) listens on loopback only, 0.0.0.0 on "
            "every interface",
        )
    for section, key, value in (
        ("upstream", "connect_timeout", config.upstream.connect_timeout),
        ("upstream", "read_timeout", config.upstream.read_timeout),
    ):
        if not value > 0:
            raise fail(section, key, "must be a positive number of seconds")
    if not config.server.shutdown_grace >= 0:
        raise fail("server", "shutdown_grace", "must be 0 or more seconds")


def _validate_upstream_url(url: str, fail: Callable[[str, str, str], ConfigError]) -> None:
    """An absolute http(s) URL with a host and a usable port: caught here, a typo is a config
    error naming the key, not a traceback from the first request."""
    if not url.startswith(("http://", "https://")):
        raise fail("upstream", "url", "must start with http:// or https://")
    try:
        parsed = URL(url)
        port = parsed.port
    except ValueError as exc:
        raise fail("upstream", "url", f"not a URL ({exc})") from None
    if not parsed.host:
        raise fail("upstream", "url", "names no host (expected e.g. https://api.openai.com)")
    if port is not None and not 0 < port <= 65535:
        raise fail("upstream", "url", f"port {port} is out of range")
