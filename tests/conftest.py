"""Fixtures only: a real recording upstream, real gateways and a real identity provider, each on 127.0.0.1.

Helpers live in tests/support/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gateway import GatewayFactory, serve
from tests.support.idp import IdP
from tests.support.openapi import SHARED_SPECS
from tests.support.servers import ServerThread
from tests.support.upstream import RecordingUpstream

# Fixtures that start a real server, and the markers a test using them must carry, so that
# `-m "not slow"` stays in-process and `-m "not node"` runs without the Node tools.
_NEEDS_MARKS = {"upstream_server": {"slow"}, "gateway": {"slow"}, "idp_server": {"slow", "node"}}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Checks that real-server tests are marked; corpus tests skip, saying why, without ../shared/specs."""
    unmarked = []
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        needed = set().union(*(marks for name, marks in _NEEDS_MARKS.items() if name in fixtures))
        missing = sorted(needed - {mark.name for mark in item.iter_markers()})
        if missing:
            unmarked.append(f"{item.nodeid}: mark it {', '.join(missing)}")
    if unmarked:
        raise pytest.UsageError("tests that start real servers must be marked:\n" + "\n".join(unmarked))
    if not SHARED_SPECS.is_dir():
        skip = pytest.mark.skip(reason=f"the real-spec corpus is absent: no {SHARED_SPECS}")
        for item in items:
            if "corpus" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def idp_server() -> Iterator[IdP]:
    """A real OAuth/OIDC server (oauth2-mock-server), one per test module."""
    with IdP() as server:
        yield server


@pytest.fixture
def idp(idp_server: IdP) -> IdP:
    """The module's identity provider, back to its defaults for each test (keys and issued tokens stay)."""
    idp_server.reset()
    return idp_server


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[tuple[RecordingUpstream, str]]:
    app = RecordingUpstream()
    with ServerThread(app) as server:
        yield app, server.url


@pytest.fixture
def upstream(upstream_server: tuple[RecordingUpstream, str]) -> RecordingUpstream:
    app, _ = upstream_server
    app.clear()
    return app


@pytest.fixture
def upstream_url(upstream_server: tuple[RecordingUpstream, str]) -> str:
    return upstream_server[1]


@pytest.fixture
def gateway() -> GatewayFactory:
    """`with gateway(raw_config) as url:` serves a real gateway for that config; url ends at the server root."""
    return serve
