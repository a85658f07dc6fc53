"""`mcp-anything tools --report` (definition sizes, what was cut) and `--search` (the offline ranking)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcp_anything.cli import main
from tests.support.cli import run_cli, write_config


def bulky_config(tmp_path: Path, **upstream: Any) -> str:
    raw = {
        "groups": [{"name": "reports", "upstreams": ["reports"], "inbound_auth": {"strategy": "none"}}],
        "upstreams": [
            {"name": "reports", "tool_prefix": "", "base_url": "http://127.0.0.1:9",
             "openapi": {"source": "bulky.yaml"}, **upstream},
        ],
    }  # fmt: skip
    return str(write_config(tmp_path, raw))


def test_report_shows_each_entry_size_and_what_was_cut(tmp_path: Path) -> None:
    config = bulky_config(tmp_path, max_tool_bytes="1KiB")
    run = run_cli("tools", "--config", config, "--report")
    assert run.returncode == 0, run.stderr
    sizes = run.stdout.split("Definition sizes", 1)[1].splitlines()
    create = next(line for line in sizes if " create_report " in line)
    assert "/ 1024" in create and "examples" in create and create.rstrip().endswith("outputSchema")
    assert "every entry is within its budget" in sizes[-1]
    document = json.loads(run_cli("tools", "--config", config, "--report", "--json").stdout)
    entries = {entry["name"]: entry for entry in document["reports"]}
    assert entries["ping"] == {
        "name": "ping", "upstream": "reports", "bytes": entries["ping"]["bytes"], "max_tool_bytes": 1024,
        "over_budget": False, "trimmed": [], "findings": [],
    }  # fmt: skip
    assert entries["create_report"]["trimmed"][-1] == "outputSchema"
    assert all(entry["bytes"] <= 1024 for entry in entries.values())


def test_report_names_the_tools_over_budget(tmp_path: Path) -> None:
    run = run_cli("tools", "--config", bulky_config(tmp_path, max_tool_bytes=1024, max_description_chars=1000),
                  "--report")  # fmt: skip
    assert run.returncode == 0, run.stderr
    # At the minimum budget every bulky entry still fits once its outputSchema is gone.
    assert "! over budget" not in run.stdout


def test_search_prints_the_ranking_offline(tmp_path: Path) -> None:
    config = bulky_config(tmp_path)
    run = run_cli("tools", "--config", config, "--search", "make a new report", "--limit", "2")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "reports: 'make a new report'"
    assert lines[1].split()[:3] == ["1.", lines[1].split()[1], "create_report"] and len(lines) == 3
    ranked = json.loads(run_cli("tools", "--config", config, "--search", "report", "--json").stdout)
    assert ranked["query"] == "report"
    assert {hit["name"] for hit in ranked["groups"]["reports"]} == {"create_report", "get_report"}
    nothing = run_cli("tools", "--config", config, "--search", "zebra")
    assert "no tool matches" in nothing.stdout


def test_search_limit_must_be_within_what_search_tools_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = bulky_config(tmp_path)
    for limit in ("0", "-3", "51", "ten"):
        with pytest.raises(SystemExit) as exited:
            main(["tools", "--config", config, "--search", "report", "--limit", limit])
        out, err = capsys.readouterr()
        assert exited.value.code == 2 and "--limit" in err and "1 to 50" in err, (limit, err)
        assert "no tool matches" not in out
