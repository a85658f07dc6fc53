"""Running the `mcp-anything` command line from tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
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
    for spec in ("echo.yaml", "bulky.yaml"):
        (tmp_path / spec).write_text((SPECS / spec).read_text())
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@contextmanager
def serving_process(config: Path, port: int) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`mcp-anything serve --config config` (which must listen on 127.0.0.1:`port`), once `/healthz` answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_anything", "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx2.get(url + "/healthz").status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.05)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stderr.close()  # type: ignore[union-attr]
