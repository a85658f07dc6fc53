"""The config package: its reusable field types, the `apikey` alias, base_dir, CEL checks, and its imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mcp_anything.config import ConfigError, headers, parse_config
from tests.support.cli import run_cli, write_config

PACKAGE = Path(__file__).parents[1] / "mcp_anything"


def raw(*, upstream: dict[str, Any] | None = None, group: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    return {
        "groups": [{"name": "g", "upstreams": ["u"], "inbound_auth": {"strategy": "none"}, **(group or {})}],
        "upstreams": [{"name": "u", "openapi": {"source": "spec.yaml"}, **(upstream or {})}],
        **top,
    }


def problems(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(config, env={})
    return caught.value.problems


# --- URLs: one rule at every key that holds a URL ------------------------------------------------

URL_KEYS = {
    "upstreams[0].base_url": lambda url: raw(upstream={"base_url": url}),
    "server.public_url": lambda url: raw(server={"public_url": url}),
    "server.tracing.endpoint": lambda url: raw(server={"tracing": {"endpoint": url}}),
    "groups[0].inbound_auth.jwt.jwks_url": lambda url: raw(
        group={"inbound_auth": {"strategy": "jwt", "jwt": {"issuer": "https://idp.example", "jwks_url": url}}}
    ),
    "groups[0].inbound_auth.introspection.endpoint": lambda url: raw(
        group={
            "inbound_auth": {
                "strategy": "introspection",
                "introspection": {"endpoint": url, "client_id": "gw", "client_secret": "s"},
            }
        }
    ),
    "upstreams[0].outbound_auth.oauth2_client_credentials.token_url": lambda url: raw(
        upstream={
            "outbound_auth": {
                "strategy": "oauth2_client_credentials",
                "oauth2_client_credentials": {"token_url": url, "client_id": "gw", "client_secret": "s"},
            }
        }
    ),
}
GOOD_URLS = ["http://127.0.0.1:8080", "https://api.example.com/v1/?x=1#f", "https://user:pw@idp.example/token"]
BAD_URLS = [
    "api.example.com/v1",
    "ftp://api.example.com",
    "http://",
    "https:///path",
    "https://exa mple.com",
    "HTTP:/x",
]


@pytest.mark.parametrize("key", URL_KEYS)
@pytest.mark.parametrize("url", GOOD_URLS)
def test_every_url_key_accepts_an_absolute_http_url_as_written(key: str, url: str) -> None:
    config = parse_config(URL_KEYS[key](url), env={})
    assert url in config.model_dump_json()  # kept exactly as written: no slash added, nothing normalised


@pytest.mark.parametrize("key", URL_KEYS)
@pytest.mark.parametrize("url", BAD_URLS)
def test_every_url_key_refuses_the_same_urls_with_the_same_message(key: str, url: str) -> None:
    assert problems(URL_KEYS[key](url)) == [f"{key}: expected an http(s) URL, got {url!r}"]


def test_a_jwt_issuer_that_is_not_a_url_needs_jwks_url() -> None:
    jwt = {"issuer": "idp.example"}
    found = problems(raw(group={"inbound_auth": {"strategy": "jwt", "jwt": jwt}}))
    assert found == [
        "groups[0].inbound_auth.jwt: issuer: not an http(s) URL, so its keys cannot be discovered; set jwks_url"
    ]


# --- header names and values, durations, names ------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "key"),
    [
        (raw(upstream={"headers": {"X Team": "a"}}), "upstreams[0].headers"),
        (
            raw(upstream={"openapi": {"source": "https://x.example/o.json", "headers": {"A:b": "s"}}}),
            "upstreams[0].openapi.headers",
        ),
        (
            raw(group={"inbound_auth": {"strategy": "api_key", "api_key": {"header": "X Key", "value": "k"}}}),
            "groups[0].inbound_auth.api_key.header",
        ),
        (
            raw(group={"authorization": {"capabilities": {"header": "x(mcp)", "public_key": "k"}}}),
            "groups[0].authorization.capabilities.header",
        ),
    ],
)
def test_header_names_are_rfc_9110_tokens_everywhere(config: dict[str, Any], key: str) -> None:
    [problem] = problems(config)
    assert problem.startswith(f"{key}") and "not a valid HTTP header name" in problem


def test_a_static_header_value_cannot_hold_a_line_break() -> None:
    found = problems(raw(upstream={"headers": {"X-Team": "a\r\nX-Admin: yes"}}))
    assert found == ["upstreams[0].headers.X-Team: a header value cannot contain line breaks"]
    openapi = {"source": "https://x.example/o.json", "headers": {"Authorization": "${TOKEN}"}}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw(upstream={"openapi": openapi}), env={"TOKEN": "Bearer s3cr3t\n"})
    assert caught.value.problems == [
        "upstreams[0].openapi.headers.Authorization: a header value cannot contain line breaks"
    ]
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        ({"timeout": "2m"}, None),
        ({"timeout": -1}, "upstreams[0].timeout: a duration cannot be negative"),
        ({"read_timeout": True}, "upstreams[0].read_timeout: expected a duration such as 30s, 100ms or 2m"),
        ({"name": "my api"}, "upstreams[0].name: String should match pattern '^[a-zA-Z0-9_-]+$'"),
    ],
)
def test_durations_and_names(upstream: dict[str, Any], expected: str | None) -> None:
    config = raw(upstream=upstream)
    if upstream.get("name"):
        config["groups"][0]["upstreams"] = [upstream["name"]]
    if expected is None:
        assert parse_config(config, env={}).upstreams[0].timeout == 120.0
    else:
        assert problems(config) == [expected]


def test_a_client_credentials_timeout_must_be_positive() -> None:
    block = {"token_url": "https://idp.example/token", "client_id": "gw", "client_secret": "s", "timeout": "0s"}
    outbound = {"strategy": "oauth2_client_credentials", "oauth2_client_credentials": block}
    assert problems(raw(upstream={"outbound_auth": outbound})) == [
        "upstreams[0].outbound_auth.oauth2_client_credentials.timeout: must be more than 0"
    ]


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (headers.is_token, ["X-API-Key", "GET", "a!#$%&'*+.^_`|~9"], ["", "X Key", "X:Y", "Ä", "X\n", "(x)"]),
        (headers.is_credential, ["k", "Bearer abc", "~!"], ["", " k", "k ", "a\nb", "a\tb", "é"]),
        (headers.is_visible, ["abc.DEF-_~+/="], ["", "a b", "a\r", "é"]),
    ],
)
def test_header_syntax(check: Any, good: list[str], bad: list[str]) -> None:
    assert all(check(text) for text in good)
    assert not any(check(text) for text in bad)


@pytest.mark.parametrize(("text", "breaks"), [("plain; x=1", False), ("a\rb", True), ("a\nb", True), ("a\0b", True)])
def test_line_breaks(text: str, breaks: bool) -> None:
    assert headers.has_line_break(text) is breaks


# --- inbound_auth is written out on every group ------------------------------------------------------


def test_a_group_without_inbound_auth_is_an_error_not_an_open_group() -> None:
    missing = raw()
    del missing["groups"][0]["inbound_auth"]
    assert problems(missing) == [
        "groups[0].inbound_auth: required; write `strategy: none` to serve this group without authentication"
    ]
    assert problems(raw(group={"inbound_auth": None})) == problems(missing)
    assert problems(raw(group={"inbound_auth": {}})) == ["groups[0].inbound_auth.strategy: Field required"]
    jwt_block_only = {"jwt": {"issuer": "https://idp.example"}}
    assert problems(raw(group={"inbound_auth": jwt_block_only}))[0] == "groups[0].inbound_auth.strategy: Field required"
    assert parse_config(raw(), env={}).groups[0].inbound_auth.strategy == "none"


# --- the inbound `apikey` spelling ---------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["api_key", "apikey"])
@pytest.mark.parametrize("block", ["api_key", "apikey"])
def test_inbound_api_key_accepts_the_old_apikey_spelling(strategy: str, block: str) -> None:
    inbound = {"strategy": strategy, block: {"header": "X-Key", "value": "k"}}
    auth = parse_config(raw(group={"inbound_auth": inbound}), env={}).groups[0].inbound_auth
    assert auth.strategy == "api_key"
    assert auth.api_key is not None and auth.api_key.header == "X-Key"


def test_a_problem_in_an_apikey_block_is_reported_where_it_was_written() -> None:
    inbound = {"strategy": "apikey", "apikey": {"value": "k", "colour": "blue"}}
    assert problems(raw(group={"inbound_auth": inbound})) == [
        "groups[0].inbound_auth.apikey.colour: unknown key (check the spelling; see config.example.yaml)"
    ]


def test_both_spellings_of_the_block_at_once_are_refused() -> None:
    inbound = {"strategy": "api_key", "api_key": {"value": "k"}, "apikey": {"value": "j"}}
    assert problems(raw(group={"inbound_auth": inbound})) == [
        "groups[0].inbound_auth.apikey: unknown key (check the spelling; see config.example.yaml)"
    ]


# --- base_dir is a loading detail --------------------------------------------------------------------


def test_base_dir_is_not_a_key_and_relative_paths_resolve_from_the_config_directory(tmp_path: Path) -> None:
    assert problems(raw(base_dir="/")) == ["base_dir: unknown key (check the spelling; see config.example.yaml)"]
    config = parse_config(raw(), base_dir=tmp_path, env={})
    assert "base_dir" not in config.model_dump()
    assert config.resolve_path("spec.yaml") == tmp_path.resolve() / "spec.yaml"
    moved = config.model_copy(update={"server": config.server.model_copy(update={"port": 1})})
    assert moved.resolve_path("spec.yaml") == tmp_path.resolve() / "spec.yaml"


# --- CEL rules are checked at load ------------------------------------------------------------------------


def test_validate_fails_on_a_bad_cel_rule_naming_it(tmp_path: Path) -> None:
    from tests.support.gateway import echo_config

    config = echo_config("http://127.0.0.1:9")
    config["groups"][0]["authorization"] = {"rules": [{"effect": "allow", "when": "jwt.sub =="}]}
    run = run_cli("validate", "--config", str(write_config(tmp_path, config)))
    assert run.returncode == 2
    assert "groups[0].authorization.rules[0].when: not a valid CEL expression" in run.stderr, run.stderr


# --- the package is a leaf -------------------------------------------------------------------------------


def _project_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "mcp_anything"}


def test_config_imports_nothing_from_the_project() -> None:
    for path in (PACKAGE / "config").glob("*.py"):
        outside = {m for m in _project_imports(path) if not m.startswith("mcp_anything.config")}
        assert not outside, (path.name, outside)
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, mcp_anything.config; print(*sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    project = {m for m in loaded if m.startswith("mcp_anything")}
    assert project - {m for m in project if m.startswith("mcp_anything.config")} == {"mcp_anything"}
