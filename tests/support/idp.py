"""A real OAuth 2 / OIDC identity provider for tests: oauth2-mock-server on 127.0.0.1.

`with IdP() as idp:` starts it (Node 24, see `node.py`) on a free port; tokens
come from its real `/token` endpoint and are checked by whoever calls
`/jwks`, `/.well-known/openid-configuration` or `/introspect`. `idp.mjs`
wraps the library with what its CLI lacks: run-time key rotation, per-token
claims, introspection backed by the tokens it issued, client authentication,
faults and outages. As a pytest fixture:

    @pytest.fixture(scope="module")
    def idp():
        with IdP() as server:
            yield server
"""

from __future__ import annotations

import base64
import json
import select
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support import node
from tests.support.servers import stop_process

_SCRIPT = Path(__file__).with_name("idp.mjs")

# The IdP is on 127.0.0.1: never send its traffic through a proxy from the environment.
urlopen = urllib.request.build_opener(urllib.request.ProxyHandler({})).open

DEFAULT_CLIENT_ID = "test-client"
DEFAULT_CLIENT_SECRET = "test-secret"


class IdPError(Exception):
    """The token endpoint answered with an error (status and OAuth error body)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class IdP:
    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self.issuer = ""
        self._control = ""

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> IdP:
        node_modules = node.ensure_installed()
        self._process = subprocess.Popen(
            [str(node.NODE), str(_SCRIPT), str(node_modules)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=node.env(),
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], self._startup_timeout)
        line = self._process.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError("oauth2-mock-server did not start (its stderr is above)")
        ports = json.loads(line)
        self.issuer = f"http://127.0.0.1:{ports['port']}"
        self._control = f"http://127.0.0.1:{ports['control_port']}"
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        stop_process(self._process)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None

    def __enter__(self) -> IdP:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- endpoints --------------------------------------------------------------------

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token"

    @property
    def introspection_url(self) -> str:
        return f"{self.issuer}/introspect"

    @property
    def revocation_url(self) -> str:
        return f"{self.issuer}/revoke"

    # --- tokens -----------------------------------------------------------------------

    def token(
        self,
        *,
        scope: str | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        **claims: Any,
    ) -> str:
        """An access token from the real `/token` endpoint (client_credentials grant).

        `claims` are set in the payload (`sub` defaults to the client id, `exp`
        to now + the configured lifetime); a claim given as None is removed.
        """
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        if claims:
            form["claims"] = json.dumps(claims)
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        request = urllib.request.Request(
            self.token_url,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urlopen(request, timeout=10) as response:
                return str(json.load(response)["access_token"])
        except urllib.error.HTTPError as exc:
            raise IdPError(exc.code, json.loads(exc.read() or b"{}")) from None

    def revoke(self, token: str) -> None:
        """Revoke through the real `/revoke` endpoint: introspection then says `active: false`."""
        basic = base64.b64encode(f"{DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET}".encode()).decode()
        request = urllib.request.Request(
            self.revocation_url,
            data=urllib.parse.urlencode({"token": token}).encode(),
            headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
        )
        with urlopen(request, timeout=10):
            pass

    def jwks(self) -> dict[str, Any]:
        with urlopen(self.jwks_url, timeout=10) as response:
            result: dict[str, Any] = json.load(response)
            return result

    # --- control ----------------------------------------------------------------------

    def rotate_key(self, alg: str = "RS256") -> str:
        """Add a signing key at run time; every new token is signed with it. Returns its kid.

        Earlier keys stay in the JWKS, so tokens they signed stay valid.
        """
        return str(self._call("POST", "/keys", {"alg": alg})["kid"])

    def configure(
        self,
        *,
        expires_in: int | None = None,
        clients: dict[str, str] | None = None,
        faults: dict[str, dict[str, Any]] | None = None,
        json_grant: bool | None = None,
    ) -> None:
        """Change behaviour until `reset()`.

        `expires_in`: token lifetime in seconds (`exp` and the response's `expires_in`).
        `clients`: {client_id: secret}; then `/token`, `/introspect` and `/revoke`
        answer 401 `invalid_client` to anyone else (by default any client is accepted).
        `faults`: {path: {"status": 503, "body": {...}, "delay_ms": 500}} answered
        instead of the real endpoint; with only `delay_ms` the real answer comes late.
        `json_grant`: a JSON `/token` body without `grant_type` is a client credentials grant,
        as at a custom token service that takes `{client_id, client_secret}`.
        """
        settings: dict[str, Any] = {}
        if expires_in is not None:
            settings["expires_in"] = expires_in
        if clients is not None:
            settings["clients"] = clients
        if faults is not None:
            settings["faults"] = faults
        if json_grant is not None:
            settings["json_grant"] = json_grant
        self._call("POST", "/configure", settings)

    def fail(self, path: str, status: int, body: dict[str, Any] | None = None) -> None:
        """Answer `path` (e.g. "/token") with `status` and `body` until `reset()`; replaces earlier faults."""
        self.configure(faults={path: {"status": status, "body": body or {}}})

    def down(self) -> None:
        """Close the OAuth listener: connections are refused until `up()` (same port)."""
        self._call("POST", "/down")

    def up(self) -> None:
        self._call("POST", "/up")

    @contextmanager
    def outage(self) -> Iterator[None]:
        self.down()
        try:
            yield
        finally:
            self.up()

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """Recorded OAuth requests, oldest first: {method, path, auth_method, client_id, form}.

        `auth_method` is client_secret_basic, client_secret_post or none; the
        form never includes `client_secret`.
        """
        recorded: list[dict[str, Any]] = self._call("GET", "/requests")
        return [r for r in recorded if path is None or r["path"] == path]

    def reset(self) -> None:
        """Back to defaults and forget recorded requests; keys and issued tokens stay."""
        self._call("POST", "/reset")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body or {}).encode() if method == "POST" else None
        request = urllib.request.Request(
            f"{self._control}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urlopen(request, timeout=10) as response:
            return json.load(response)
