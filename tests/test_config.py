"""Configuration precedence and errors that name the key and where it was set."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from proxy.config import ConfigError, load_config, parse_timing

REPO = Path(__file__).resolve().parents[1]


def test_example_config_documents_exactly_the_defaults() -> None:
    example = load_config(REPO / "config.example.toml", {}, {})
    assert msgspec.to_builtins(example) == msgspec.to_builtins(load_config(None, {}, {}))


def test_precedence_flags_over_environment_over_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[server]\nport = 7000\nmode = "auto"\n[upstream]\nurl = "http://file"\n')
    env = {"CASSETTE_PROXY_PORT": "7001", "CASSETTE_PROXY_UPSTREAM": "http://env"}
    config = load_config(path, env, {"port": 7002, "mode": None})
    assert config.server.port == 7002  # flag
    assert config.upstream.url == "http://env"  # environment beats file
    assert config.server.mode == "auto"  # file beats default
    assert config.server.host == "127.0.0.1"  # default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\nprot = 1\n", "unknown key `server.prot`"),
        ("[sever]\nport = 1\n", "unknown key `sever`"),
        ('[server]\nport = "x"\n', "bad value for `server.port`"),
        ('[replay]\ntiming = "fast"\n', "bad value for `replay.timing`"),
        ("[replay]\ntiming = 0\n", "bad value for `replay.timing`"),
        ("[replay]\ntiming = -2.5\n", "bad value for `replay.timing`"),
        ("[replay]\ntiming = true\n", "bad value for `replay.timing`"),
        ("[replay]\nmiss_status = 429\n", "bad value for `replay.miss_status`"),
        ('[server]\nmode = "play"\n', "bad value for `server.mode`"),
        ("[server\n", "invalid TOML"),
        ('[upstream]\nurl = "http://"\n', "bad value for `upstream.url`: names no host"),
        ('[upstream]\nurl = "http://host:80a"\n', "bad value for `upstream.url`: not a URL"),
        ('[upstream]\nurl = "http://host:0"\n', "bad value for `upstream.url`: port 0"),
        ("[upstream]\nread_timeout = -5\n", "bad value for `upstream.read_timeout`"),
        ("[upstream]\nconnect_timeout = 0\n", "bad value for `upstream.connect_timeout`"),
        ("[server]\nshutdown_grace = -1\n", "bad value for `server.shutdown_grace`"),
        ('[server]\nhost = ""\n', "bad value for `server.host`: must not be empty"),
        ('[matching]\nheaders = ["Authorization"]\n', "`matching.headers`: 'Authorization' is"),
    ],
)
def test_bad_file_names_key_and_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {}, {})
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[server]\nmode = "r\u00e9cord"\n'.encode("latin-1"))
    with pytest.raises(
        ConfigError, match=r"latin1\.toml: not UTF-8 text \(byte 0xe9 at offset 18\)"
    ):
        load_config(path, {}, {})


def test_a_flag_is_named_as_the_caller_spells_it() -> None:
    with pytest.raises(ConfigError, match=r"^--cassette-upstream: bad value for `upstream\.url`"):
        load_config(
            None, {}, {"upstream": "ftp://x"}, flag_names={"upstream": "--cassette-upstream"}
        )


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"CASSETTE_PROXY_PORT.*server\.port"):
        load_config(None, {"CASSETTE_PROXY_PORT": "eighty"}, {})


@pytest.mark.parametrize(("text", "scale"), [("2", 0.5), ("0.5", 2.0), ('"2"', 0.5)])
def test_replay_timing_may_be_a_toml_number(tmp_path: Path, text: str, scale: float) -> None:
    """config.example.toml documents a number (`2` = twice as fast), so a number is accepted."""
    path = tmp_path / "timing.toml"
    path.write_text(f"[replay]\ntiming = {text}\n")
    assert parse_timing(load_config(path, {}, {}).replay.timing) == scale


def test_replay_timing_values() -> None:
    assert parse_timing("none") is None
    assert parse_timing("original") == 1.0
    assert parse_timing("2") == 0.5
    with pytest.raises(ValueError):
        parse_timing("0")


@pytest.mark.parametrize(
    ("environ", "flags"),
    [
        ({}, {}),
        ({"CASSETTE_PROXY_UPSTREAM": "http://env"}, {}),
        ({}, {"upstream": "http://flag"}),
        ({"CASSETTE_PROXY_HOST": "::1"}, {"port": 0}),
    ],
    ids=["file-only", "env", "flag", "other-section"],
)
def test_a_section_that_is_not_a_table_names_the_key_file_and_fix(
    tmp_path: Path, environ: dict[str, str], flags: dict[str, object]
) -> None:
    """`upstream = "…"` where `[upstream]` + `url = "…"` was meant: never a TypeError."""
    path = tmp_path / "flat.toml"
    path.write_text('upstream = "http://127.0.0.1:9"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ, flags)
    assert str(caught.value) == (
        f"{path}: `upstream` must be a table, not a string; write `[upstream]` on a line of its "
        'own with its keys below it, e.g. `url = "http://127.0.0.1:9"` (config.example.toml '
        "lists every key)"
    )


def test_an_empty_environment_variable_counts_as_unset() -> None:
    # `CASSETTE_PROXY_HOST=` taken literally would listen on every interface.
    config = load_config(None, {"CASSETTE_PROXY_HOST": "", "CASSETTE_PROXY_CASSETTE_DIR": ""}, {})
    assert config.server.host == "127.0.0.1"
    assert config.server.cassette_dir is None
