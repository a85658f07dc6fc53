"""Running the `mcp-anything` command line from tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.openapi import SPECS


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_anything", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def write_config(tmp_path: Path, raw: dict[str, Any]) -> Path:
    (tmp_path / "echo.yaml").write_text((SPECS / "echo.yaml").read_text())
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path
