"""Reading a config: YAML, `${ENV}` expansion, validation, and errors that name their key.

Problems are collected and reported together, each with the location of the key
that caused it (`upstreams[0].openapi.source: file not found: specs/x.yaml`),
and never with the offending value, which may be a secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mcp_anything.config.root import Config


class ConfigError(Exception):
    """One or more problems in a config file, each prefixed with its location."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(node: Any, env: dict[str, str], location: str = "", problems: list[str] | None = None) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string; `$$` is a literal `$`.

    An unset variable without a default is a problem naming the key; the
    variable's value never appears in a message.
    """
    if problems is None:
        problems = []
    if isinstance(node, dict):
        return {k: expand_env(v, env, _join(location, str(k)), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [expand_env(v, env, f"{location}[{i}]", problems) for i, v in enumerate(node)]
    if not isinstance(node, str) or "$" not in node:
        return node

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{location or '<root>'}: environment variable {name} is not set and has no default")
        return ""

    return _ENV_REF.sub(substitute, node)


def _join(location: str, key: str) -> str:
    return f"{location}.{key}" if location else key


def format_validation_error(error: ValidationError) -> list[str]:
    """One line per problem, `location: message`, never echoing the offending value (it may be a secret)."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        location = ""
        for part in item["loc"]:
            if isinstance(part, int):
                location += f"[{part}]"
            elif not _is_type_tag(str(part)):
                location = _join(location, str(part))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see config.example.yaml)"
        problems.append(f"{location or '<root>'}: {message}")
    return list(dict.fromkeys(problems))


def _is_type_tag(part: str) -> bool:
    """Whether a location part names a type pydantic tried (`str`, `list[str]`), not a key (`strategy`)."""
    return part in ("str", "function-after", "function-before") or part.startswith(
        ("literal[", "list[", "dict[", "str[", "function-")
    )


@dataclass(frozen=True)
class ConfigSource:
    """Where the serving config comes from, so that it can be read again on reload."""

    path: Path
    overrides: Mapping[str, Any] = field(default_factory=dict)  # `server` values given on the command line

    def load(self) -> Config:
        config = load_config(self.path)
        if self.overrides:
            config = config.model_copy(update={"server": config.server.model_copy(update=dict(self.overrides))})
        return config

    def watched(self, config: Config) -> list[Path]:
        """The local files `config` is built from: itself, specs, overlays and scripts."""
        paths = [self.path.resolve()]
        for upstream in config.upstreams:
            if not upstream.openapi.source.startswith(("http://", "https://")):
                paths.append(config.resolve_path(upstream.openapi.source))
            paths += [config.resolve_path(overlay) for overlay in upstream.overlays]
            if (script := upstream.outbound_auth.script) is not None:
                paths.append(config.resolve_path(script.source))
        paths += [config.resolve_path(g.inbound_auth.script.source) for g in config.groups if g.inbound_auth.script]
        return list(dict.fromkeys(paths))


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read, expand and validate a config file; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
    return parse_config(raw, base_dir=path.parent, env=env)


def parse_config(raw: Any, base_dir: Path = Path("."), env: dict[str, str] | None = None) -> Config:
    """Validate an already-read config; relative paths in it are resolved from `base_dir`."""
    if not isinstance(raw, dict):
        raise ConfigError(["<root>: expected a mapping with `groups` and `upstreams`"])
    problems: list[str] = []
    environment = dict(os.environ) if env is None else env
    expanded = expand_env(raw, environment, problems=problems)
    if problems:
        raise ConfigError(problems)
    try:
        config = Config.model_validate(expanded, context={"base_dir": base_dir, "env": environment})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    problems = config.cross_reference_problems()
    if problems:
        raise ConfigError(problems)
    return config
