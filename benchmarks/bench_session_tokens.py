"""Cost of a self-contained session id: issuing one, and opening one on every request.

    python -m benchmarks.bench_session_tokens [--iterations 200000]

Rows: issue (once per `initialize`), open (every request of a session), open with the token sealed
by the previous key (during a rotation), and refusing an altered token (a forgery costs the
gateway no more than a valid id). The best of five repeats of `--iterations` calls each, in
microseconds per call; the token's length in characters is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit

from mcp_anything.server.session_tokens import SessionCodec

CURRENT = "a current secret of at least thirty-two bytes"
PREVIOUS = "the previous secret, still accepted during rotation"
CLIENT = {
    "clientInfo": {"name": "claude-code", "version": "2.1.0"},
    "capabilities": {"roots": {"listChanged": True}, "sampling": {}, "elicitation": {}},
}
ARGS = {
    "protocol_version": "2025-11-25",
    "principal": "jwt:https://login.example.com/tenant/v2.0|3f2c6a1e-8d7b-4c55-9e0a-1b2c3d4e5f60",
    "endpoint": "/mcp",
    "client": CLIENT,
}


def per_call_us(stmt: object, iterations: int) -> float:
    return min(timeit.repeat(stmt, number=iterations, repeat=5)) / iterations * 1e6  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=200_000)
    args = parser.parse_args()
    codec = SessionCodec([CURRENT, PREVIOUS])
    token = codec.issue(**ARGS)  # type: ignore[arg-type]
    old_token = SessionCodec([PREVIOUS]).issue(**ARGS)  # type: ignore[arg-type]
    middle = len(token) // 2
    altered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    assert codec.open(token, "/mcp") and codec.open(old_token, "/mcp") and codec.open(altered, "/mcp") is None

    n = args.iterations
    rows = [
        ("issue", per_call_us(lambda: codec.issue(**ARGS), n // 4)),  # type: ignore[arg-type]
        ("open (current key)", per_call_us(lambda: codec.open(token, "/mcp"), n)),
        ("open (previous key)", per_call_us(lambda: codec.open(old_token, "/mcp"), n)),
        ("refuse an altered token", per_call_us(lambda: codec.open(altered, "/mcp"), n)),
    ]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"token: {len(token)} characters (principal {len(ARGS['principal'])} chars, client info {CLIENT})")
    for name, us in rows:
        print(f"{name:<26} {us:6.2f} us")


if __name__ == "__main__":
    main()
