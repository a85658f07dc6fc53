"""Debian programs the tests run for real (redis-server, haproxy): found on PATH, else installed with apt-get."""

from __future__ import annotations

import shutil
import subprocess

_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def debian_program(program: str, package: str | None = None) -> str:
    """The path of `program`, installing Debian's `package` (default: the program's name) when it is missing."""
    found = shutil.which(program) or shutil.which(program, path=_PATH)
    if found:
        return found
    environment = {"DEBIAN_FRONTEND": "noninteractive", "PATH": _PATH}
    subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, env=environment)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package or program],
        check=True,
        capture_output=True,
        env=environment,
    )
    found = shutil.which(program, path=_PATH)
    if not found:
        raise RuntimeError(f"apt-get installed {package or program} but {program} is not on PATH")
    return found
