"""Micro-benchmark of per-user tool authorization (issue 4's performance targets).

    python -m benchmarks.bench_authz

Per request: `grant()` (wristband verification and/or the `jwt`-only rules) plus filtering
2,000 tools down to an allowance of 50 must stay under 1 ms; one rule evaluation under 20 µs.
The audit logger writes to /dev/null, as it would write to a log in production.
With cel-python installed, the same rule is timed there too (the reason the gateway uses
common-expression-language).
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from joserfc import jwk, jwt
from starlette.datastructures import Headers

from mcp_anything.authz import create_authorizer
from mcp_anything.config import parse_config
from mcp_anything.identity import Identity
from mcp_anything.tools import HttpRequest, Tool

UPSTREAMS, TOOLS_PER_UPSTREAM, ALLOWED = 20, 100, 50
RULE = 'jwt.sub == "alice" || "admins" in jwt.groups'
CLAIMS = {
    "iss": "https://idp.example",
    "sub": "svc-report",
    "aud": "mcp",
    "exp": int(time.time()) + 3600,
    "iat": int(time.time()),
    "groups": ["staff", "readers", "admins"],
    "team": "ops",
    "email": "report@example.com",
    "scope": "openid tools",
}
RULES = [
    {"effect": "deny", "when": 'jwt.sub.startsWith("svc-")', "tools": ["*_delete_*"]},
    {"effect": "allow", "when": RULE, "tools": ["*"]},
    {"effect": "allow", "when": 'jwt.team == "ops"', "tools": ["*_get_*", "*_list_*"]},
]


def tool(upstream: str, base_name: str) -> Tool:
    return Tool(
        name=f"{upstream}_{base_name}",
        upstream=upstream,
        base_name=base_name,
        method="GET",
        path=f"/{base_name}",
        description="",
        input_schema={"type": "object"},
        output_schema=None,
        annotations={},
        validate=lambda arguments: None,
        build_request=lambda arguments: HttpRequest("GET", "/"),
    )


def timed(label: str, fn: Callable[[], Any], number: int, budget_us: float | None = None) -> None:
    fn()
    samples = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number * 1e6)
    best, median = min(samples), statistics.median(samples)
    verdict = "" if budget_us is None else ("  ok" if median < budget_us else f"  OVER {budget_us:g} µs")
    print(f"{label:<62} median {median:8.1f} µs   best {best:8.1f} µs{verdict}")


def main() -> None:
    audit_logger = logging.getLogger("mcp_anything.audit")
    audit_logger.addHandler(logging.FileHandler("/dev/null"))
    audit_logger.setLevel(logging.INFO)
    names = [f"up{u}" for u in range(UPSTREAMS)]
    verbs = ["get", "list", "create", "update", "delete"]
    tools = [tool(n, f"{verbs[i % 5]}_thing{i}") for n in names for i in range(TOOLS_PER_UPSTREAM)]
    granted: dict[str, list[str]] = {}
    for t in tools[:: len(tools) // ALLOWED]:  # spread over every upstream
        granted.setdefault(t.upstream, []).append(t.base_name)
    allowed = {"tools": granted}

    key = jwk.ECKey.generate_key("P-256")
    wristband = jwt.encode(
        {"alg": "ES256", "typ": "JWT"},
        {"exp": int(time.time()) + 3600, "iat": int(time.time()), "allowed-capabilities": json.dumps(allowed)},
        key,
    )
    headers = Headers({"x-mcp-authorized": wristband})
    identity = Identity(strategy="jwt", subject=CLAIMS["sub"], claims=CLAIMS)

    base = Path(tempfile.mkdtemp())
    (base / "wristband.pem").write_text(key.as_pem(private=False).decode())
    capabilities = {"public_key": "wristband.pem"}

    def authorizer(authorization: dict[str, Any]) -> Any:
        raw = {
            "groups": [
                {"name": "g", "upstreams": names, "inbound_auth": {"strategy": "none"}, "authorization": authorization}
            ],
            "upstreams": [{"name": n, "openapi": {"source": f"{n}.yaml"}} for n in names],
        }
        root = parse_config(raw, base_dir=base, env={})
        return create_authorizer(root.groups[0].authorization, root)

    print(f"{len(tools)} tools, allowance of {ALLOWED}; audit lines written to /dev/null\n")
    cases = {
        "nothing configured (AllowAll)": {},
        "wristband (ES256 verify + claim parse)": {"capabilities": capabilities},
        "3 jwt-only rules": {"default": "deny", "rules": RULES},
        "wristband + 3 rules": {"capabilities": capabilities, "default": "deny", "rules": RULES},
    }
    for label, authorization in cases.items():
        authz = authorizer(authorization)
        shown = len(authz.grant("g", identity, headers).filter_tools(tools))

        def request(a: Any = authz) -> None:
            a.grant("g", identity, headers).filter_tools(tools)

        timed(f"grant + filter, {label} -> {shown}", request, 300, budget_us=1000)
        grant = authz.grant("g", identity, headers)
        timed(f"  filter only, {label}", lambda g=grant: g.filter_tools(tools), 300, budget_us=1000)

    per_call = authorizer(
        {"rules": [{"effect": "deny", "when": "mcp.tool.arguments.id == 13 && jwt.team == 'ops'", "tools": ["*"]}]}
    )
    grant = per_call.grant("g", identity, headers)
    arguments = {"id": 12, "title": "x", "tags": ["a", "b"]}
    timed("can_call, one per-call rule on mcp.tool.arguments", lambda: grant.can_call(tools[0], arguments), 5000)
    audit_logger.setLevel(logging.WARNING)
    timed("  the same, audit off: the rule evaluation itself", lambda: grant.can_call(tools[0], arguments), 5000, 20)

    import cel

    program = cel.compile(RULE)
    context = cel.Context(variables={"jwt": CLAIMS})
    print()
    timed(f"common-expression-language: execute {RULE!r}", lambda: program.execute(context), 20000, 20)
    convert = "common-expression-language: jwt claims -> CEL context (per request)"
    timed(convert, lambda: cel.Context(variables={"jwt": CLAIMS}), 5000, 20)
    try:
        import celpy
    except ImportError:
        print("cel-python not installed: pip install cel-python to compare")
        return
    env = celpy.Environment()
    celpy_program = env.program(env.compile(RULE))
    activation = {"jwt": celpy.json_to_cel(CLAIMS)}
    timed(f"cel-python: evaluate {RULE!r}", lambda: celpy_program.evaluate(activation), 500, 20)


if __name__ == "__main__":
    main()
