"""Running the `mcp-anything` command line from tests: `validate` and `tools` in-process, `serve` as a process."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import httpx2
import yaml

from mcp_anything.cli import main
from tests.support.openapi import SPECS


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mcp-anything validate|tools ...` in this process; stderr holds what was printed and logged there."""
    assert args[0] in ("validate", "tools"), "`serve` runs as a process: use run_cli_process"
    stdout, stderr = io.StringIO(), io.StringIO()
    logged = logging.StreamHandler(stderr)
    logged.setLevel(logging.WARNING)  # what a process without logging configured prints (logging.lastResort)
    root = logging.getLogger()
    root.addHandler(logged)
    try:
        with (
            mock.patch.dict(os.environ, env or {}),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            code = main(list(args))
    finally:
        root.removeHandler(logged)
    return subprocess.CompletedProcess(["mcp-anything", *args], code, stdout.getvalue(), stderr.getvalue())


def run_cli_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mcp-anything ...` as a child process."""
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
def serving_process(
    config: Path, port: int, open_files: int | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`mcp-anything serve --config config` (which must listen on 127.0.0.1:`port`), once `/healthz` answers.

    `open_files`: the process's descriptor limit (`ulimit -n`), as in a container that sets it low.
    """

    def limit_open_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_anything", "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=limit_open_files,
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
