"""The command line: validate, tools, serve (including the bundled demo), and bad configs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from tests.support.cli import run_cli, run_cli_process, write_config
from tests.support.gateway import echo_config
from tests.support.mcp import mcp_client
from tests.support.servers import free_port
from tests.support.wristband import PUBLIC_PEM

pytestmark = pytest.mark.anyio


def test_validate_prints_one_line_per_upstream(tmp_path: Path) -> None:
    run = run_cli("validate", "--config", str(write_config(tmp_path, echo_config("http://127.0.0.1:9"))))
    assert run.returncode == 0, run.stderr
    assert "upstream echo:" in run.stdout and "tools from" in run.stdout
    assert "config OK" in run.stdout


def test_validate_warns_of_a_wristband_bound_to_nothing(tmp_path: Path) -> None:
    raw = echo_config("http://127.0.0.1:9")
    raw["groups"][0]["authorization"] = {"capabilities": {"public_key": PUBLIC_PEM}}
    unbound = run_cli("validate", "--config", str(write_config(tmp_path, raw)))
    assert unbound.returncode == 0 and "config OK" in unbound.stdout
    assert "config warning: groups[0].authorization.capabilities: the wristband is bound to neither" in unbound.stderr
    for binding in ({"audience": "gw"}, {"bind_subject": True}):
        raw["groups"][0]["authorization"]["capabilities"] = {"public_key": PUBLIC_PEM, **binding}
        bound = run_cli("validate", "--config", str(write_config(tmp_path, raw)))
        assert bound.returncode == 0 and "config warning" not in bound.stderr, bound.stderr


def test_tools_lists_tools_and_json(tmp_path: Path) -> None:
    path = write_config(tmp_path, echo_config("http://127.0.0.1:9"))
    table = run_cli("tools", "--config", str(path))
    assert table.returncode == 0, table.stderr
    assert "echo_get_item" in table.stdout and "/items/{itemId}" in table.stdout
    listing = json.loads(run_cli("tools", "--config", str(path), "--json").stdout)
    names = {t["name"] for t in listing["default"]}
    assert "echo_create_item" in names
    assert all("inputSchema" in t for t in listing["default"])
    assert run_cli("tools", "--config", str(path), "--group", "nope").returncode == 2


def test_tools_piped_into_head_exits_quietly(tmp_path: Path) -> None:
    # Far more output than a pipe buffers, so the writer is still writing when `head` goes away.
    operation = {"summary": "x" * 200, "responses": {"200": {"description": "ok"}}}
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "many", "version": "1"},
        "paths": {f"/things{i}": {"get": {**operation, "operationId": f"thing{i}"}} for i in range(2000)},
    }
    (tmp_path / "many.json").write_text(json.dumps(spec))
    raw = echo_config("http://127.0.0.1:9")
    raw["upstreams"][0]["openapi"]["source"] = "many.json"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    tools = subprocess.Popen(
        [sys.executable, "-m", "mcp_anything", "tools", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    head = subprocess.run(["head", "-n", "2"], stdin=tools.stdout, capture_output=True, timeout=60)
    assert tools.stdout is not None
    tools.stdout.close()  # only `head` holds the read end now, as in a shell pipeline
    _, stderr = tools.communicate(timeout=60)
    assert len(head.stdout.splitlines()) == 2
    assert stderr == b"", stderr.decode()[-2000:]
    assert tools.returncode == 141


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["groups"][0].update(authorisation={}), "groups[0].authorisation: unknown key"),
        (lambda c: c["upstreams"][0].update(timout="3s"), "upstreams[0].timout: unknown key"),
        (lambda c: c["upstreams"][0]["openapi"].update(source="missing.yaml"), "upstreams[0].openapi.source"),
        (lambda c: c["groups"][0].update(upstreams=["echo", "nope"]), "groups[0].upstreams[1]: unknown upstream"),
        (lambda c: c["upstreams"][0].update(timeout="soon"), "upstreams[0].timeout: expected a duration"),
        (lambda c: c["upstreams"][0].update(base_url="${NOT_SET_ANYWHERE}"), "environment variable NOT_SET_ANYWHERE"),
        (
            lambda c: c["groups"][0]["inbound_auth"].update(strategy="jwt"),
            "groups[0].inbound_auth: strategy 'jwt' needs a `jwt:` block",
        ),
        (
            lambda c: c["groups"].append(
                {"name": "other", "endpoint": "/mcp", "upstreams": ["echo"], "inbound_auth": {"strategy": "none"}}
            ),
            "groups[1].endpoint: '/mcp' is already used by groups[0]",
        ),
        (
            lambda c: (
                c["upstreams"].append({**c["upstreams"][0], "name": "echo2"}),
                c["groups"][0]["upstreams"].append("echo2"),
            ),
            "comes from both 'echo' and 'echo2'",
        ),
    ],
)
def test_bad_configs_exit_2_naming_the_key(tmp_path: Path, mutate: Any, expected: str) -> None:
    raw = echo_config("http://127.0.0.1:9")
    raw["groups"][0]["inbound_auth"] = {"strategy": "none"}
    mutate(raw)
    run = run_cli("validate", "--config", str(write_config(tmp_path, raw)))
    assert run.returncode == 2
    assert expected in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_every_problem_is_reported_and_secrets_never_are(tmp_path: Path) -> None:
    raw = echo_config("http://127.0.0.1:9", timeout="soon")
    raw["upstreams"][0]["outbound_auth"] = {"strategy": "bearer", "bearer": {"token": "${UPSTREAM_TOKEN}"}}
    raw["groups"][0]["colour"] = "blue"
    run = run_cli("validate", "--config", str(write_config(tmp_path, raw)), env={"UPSTREAM_TOKEN": "s3cr3t-value"})
    assert run.returncode == 2
    assert "upstreams[0].timeout" in run.stderr and "groups[0].colour" in run.stderr
    assert "s3cr3t-value" not in run.stderr + run.stdout


def test_example_config_documents_valid_keys() -> None:
    from mcp_anything.config import parse_config

    example = yaml.safe_load((Path(__file__).parents[1] / "config.example.yaml").read_text())
    config = parse_config(example)
    assert config.upstreams[0].name == "petstore"


@contextmanager
def serving(*args: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_anything", "serve", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx2.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert process.poll() is None, process.communicate()[1].decode()
            assert time.monotonic() < deadline, "gateway did not become ready"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=10)  # waits, and closes the pipes


@pytest.mark.slow
async def test_serve_without_config_serves_the_demo() -> None:
    with serving() as url:
        async with mcp_client(url + "/mcp", mode="auto") as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"shop_list_books", "shop_get_book", "shop_create_book", "shop_delete_book"} <= names
            book = await client.call_tool("shop_get_book", {"bookId": 3})
            created = await client.call_tool("shop_create_book", {"title": "Dawn", "author": "Octavia E. Butler"})
            missing = await client.call_tool("shop_get_book", {"bookId": 999})
    assert book.structured_content is not None and book.structured_content["title"] == "Kindred"
    assert created.structured_content is not None and created.structured_content["id"] == 4
    assert missing.is_error and "HTTP 404" in missing.content[0].text


@pytest.mark.slow
def test_serve_with_a_bad_config_serves_nothing(tmp_path: Path) -> None:
    raw = echo_config("http://127.0.0.1:9")
    raw["upstreams"][0]["openapi"]["source"] = "nope.yaml"
    port = free_port()
    run = run_cli_process("serve", "--config", str(write_config(tmp_path, raw)), "--port", str(port))
    assert run.returncode == 2
    assert "upstreams[0].openapi.source" in run.stderr
