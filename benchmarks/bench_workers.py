"""`mcp-anything serve --workers 2` against one worker, side by side in one run, load generator included.

Four processes share the machine: a small upstream API (bench_servers.py's: it counts the item requests
it answers, so the run checks that every call reached it), `mcp-anything serve` with one worker,
`mcp-anything serve --workers 2` (both the real command line, same config, same session key), and this
process driving them (aiohttp) in interleaved rounds, so that a burst of other load on the machine falls
on both alike: `--calls` sequential calls (latency), then `--concurrency` clients for `--seconds`
(throughput). Calls are `tools/call` on the stateless 2026-07-28 protocol and on a 2025-11-25 session.
*cpu/call* is the CPU time of the serving process tree (the supervisor and its workers) per call.

    python -m benchmarks.bench_workers [--calls 1000] [--seconds 20] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.bench_servers import measure_targets, upstream_count, write_gateway_config
from benchmarks.common import (
    WARM_UP_CALLS,
    Target,
    free_port,
    server_process,
)

SESSION_KEY = "a-benchmark-session-key-of-32-bytes-or-more"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    ports = {name: free_port() for name in ("upstream", "1 worker", "2 workers")}
    upstream_url = f"http://127.0.0.1:{ports['upstream']}"
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        server = {"host": "127.0.0.1", "sessions": {"key": SESSION_KEY}, "reload_interval": "off"}
        config_path = write_gateway_config(Path(tmp), upstream_url, server)
        upstream = [sys.executable, "-m", "benchmarks.bench_servers", "--serve", "upstream", str(ports["upstream"])]
        pids = {"upstream": stack.enter_context(server_process(upstream, upstream_url)).pid}
        for name, workers in (("1 worker", 1), ("2 workers", 2)):
            argv = [sys.executable, "-m", "mcp_anything", "serve", "--config", str(config_path)]
            argv += ["--port", str(ports[name]), "--workers", str(workers)]
            pids[name] = stack.enter_context(server_process(argv, f"http://127.0.0.1:{ports[name]}")).pid
        targets = [Target("direct upstream", upstream_url, "direct", pids["upstream"])]
        for name in ("1 worker", "2 workers"):
            url = f"http://127.0.0.1:{ports[name]}/mcp"
            targets.append(Target(f"{name}, 2026-07-28 stateless", url, "stateless", pids[name]))
            targets.append(Target(f"{name}, 2025-11-25 session", url, "session", pids[name]))
        print(
            f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f};"
            f" calls={args.calls} seconds={args.seconds} concurrency={args.concurrency}"
        )
        before = upstream_count(upstream_url)
        results = asyncio.run(measure_targets(targets, args))
        reached = upstream_count(upstream_url) - before
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    made = sum(seq.count + conc.count for seq, conc in results) + WARM_UP_CALLS * len(targets)
    assert reached == made, f"the upstream answered {reached} item requests; {made} calls were made"
    header = f"{'target':<32} {'seq p50':>8} {'seq p99':>8} | {'conc rps':>8} {'p50':>7} {'p99':>7} {'cpu/call':>8}"
    print(header)
    print("-" * len(header))
    for target, (seq, conc) in zip(targets, results, strict=True):
        print(
            f"{target.name:<32} {seq.p50_ms:>6.3f}ms {seq.p99_ms:>6.3f}ms | {conc.rps:>8.0f} {conc.p50_ms:>5.2f}ms"
            f" {conc.p99_ms:>5.2f}ms {conc.server_cpu_us:>6.0f}us"
        )
    by_name = {target.name: result for target, result in zip(targets, results, strict=True)}
    for kind in ("2026-07-28 stateless", "2025-11-25 session"):
        one, two = by_name[f"1 worker, {kind}"], by_name[f"2 workers, {kind}"]
        print(f"2 workers / 1 worker ({kind}): throughput {two[1].rps / one[1].rps:.2f}x")


if __name__ == "__main__":
    main()
