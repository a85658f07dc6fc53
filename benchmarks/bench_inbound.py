"""Micro-benchmark: the cost of inbound authentication per request.

Times `authenticate()` for `none`, `apikey`, `jwt` (keys already fetched; a
token seen before, and tokens each seen for the first time, RS256 and ES256)
`introspection` served from its cache, and the script strategies side by side:
`lua` and `js` running the issue's validate_token script (examples/validate_token.js
and its Lua port; Lua with its worker-thread handoff, JS inline). The JWKS and introspection
endpoint are a small aiohttp app on 127.0.0.1, so nothing but the strategy itself
is on the clock. Target: well under 0.2 ms per call.

    python -m benchmarks.bench_inbound [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from starlette.datastructures import Headers

from benchmarks.common import percentile
from mcp_anything.config import parse_config
from mcp_anything.inbound import Authenticator, InboundRequest, create_authenticator

AUDIENCE = "bench-gateway"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def authenticator(inbound_auth: dict[str, Any]) -> Authenticator:
    config = parse_config(
        {
            "groups": [{"name": "bench", "upstreams": ["u"], "inbound_auth": inbound_auth}],
            "upstreams": [{"name": "u", "openapi": {"source": "unused.yaml"}}],
        }
    )
    return create_authenticator(config.groups[0].inbound_auth, config)


async def idp(keys: list[RSAKey | ECKey], claims: dict[str, Any]) -> tuple[web.AppRunner, str]:
    async def jwks(_: web.Request) -> web.Response:
        return web.json_response({"keys": [key.as_dict(private=False) for key in keys]})

    async def introspect(_: web.Request) -> web.Response:
        return web.json_response({"active": True, **claims})

    app = web.Application()
    app.router.add_get("/jwks", jwks)
    app.router.add_post("/introspect", introspect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def bearer(token: str) -> InboundRequest:
    return InboundRequest("POST", "/mcp", Headers({"authorization": f"Bearer {token}"}))


async def measure(auth: Authenticator, warm: InboundRequest, requests: list[InboundRequest]) -> list[float]:
    """Microseconds per `authenticate()` for each request in turn, after warming up with `warm`."""
    for _ in range(200):  # also fetches keys
        await auth.authenticate(warm)
    samples = []
    for request in requests:
        start = time.perf_counter_ns()
        await auth.authenticate(request)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


async def main(calls: int) -> None:
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "alg": "RS256"})
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "alg": "ES256"})
    now = int(time.time())
    claims = {"iss": "", "aud": AUDIENCE, "sub": "alice", "scope": "read write", "iat": now, "exp": now + 3600}
    runner, base = await idp([rsa, ec], claims)
    claims["iss"] = base

    def tokens(key: RSAKey | ECKey, count: int) -> list[InboundRequest]:
        """`count` distinct tokens: each one is seen for the first time."""
        header = {"alg": "RS256" if isinstance(key, RSAKey) else "ES256", "kid": key.kid}
        return [bearer(jwt.encode(header, {**claims, "jti": str(i)}, key)) for i in range(count)]

    fresh = max(calls // 10, 100)  # signing is slow: fewer distinct tokens
    jwt_auth = {
        "strategy": "jwt",
        "jwt": {"issuer": base, "jwks_url": f"{base}/jwks", "audience": AUDIENCE, "algorithms": ["RS256", "ES256"]},
    }
    keys = {"a": "key-a-0123456789", "b": "key-b-0123456789", "c": "key-c-0123456789"}
    introspection = {"endpoint": f"{base}/introspect", "client_id": "bench", "client_secret": "bench-secret"}
    introspection_auth = {"strategy": "introspection", "introspection": introspection}
    rs256, es256 = tokens(rsa, fresh + 1), tokens(ec, fresh + 1)
    apikey = InboundRequest("POST", "/mcp", Headers({"x-api-key": keys["c"]}))
    anonymous = InboundRequest("POST", "/mcp", Headers({}))
    lua_auth = {"strategy": "lua", "lua": {"source": str(EXAMPLES / "lua_ports" / "validate_token.lua")}}
    js_auth = {"strategy": "js", "js": {"source": str(EXAMPLES / "validate_token.js")}}
    # Interleaved so a burst of load from elsewhere on the machine falls on both runtimes alike.
    scripts = [case for _ in range(3) for case in (("lua", lua_auth), ("js", js_auth))]
    cases = [
        ("none", {"strategy": "none"}, anonymous, [anonymous] * calls),
        ("apikey (3 keys)", {"strategy": "apikey", "apikey": {"values": keys}}, apikey, [apikey] * calls),
        ("jwt RS256, same token", jwt_auth, rs256[0], [rs256[0]] * calls),
        ("jwt RS256, each token new", jwt_auth, rs256[0], rs256[1:]),
        ("jwt ES256, each token new", jwt_auth, es256[0], es256[1:]),
        ("introspection, cached", introspection_auth, rs256[0], [rs256[0]] * calls),
        *((f"{name} validate_token", auth, rs256[0], [rs256[0]] * calls) for name, auth in scripts),
    ]
    print(f"{'strategy':28} {'p50 µs':>8} {'p99 µs':>8} {'mean µs':>8} {'calls':>7}")
    try:
        for name, inbound_auth, warm, requests in cases:
            auth = authenticator(inbound_auth)
            samples = await measure(auth, warm, requests)
            p50, p99, mean = percentile(samples, 0.5), percentile(samples, 0.99), statistics.fmean(samples)
            print(f"{name:28} {p50:8.1f} {p99:8.1f} {mean:8.1f} {len(samples):7}")
            await auth.aclose()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    asyncio.run(main(parser.parse_args().calls))
