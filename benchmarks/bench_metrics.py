"""Per-call cost of metrics: one `ToolMetrics.record`, in one process and in `--workers` multiprocess mode.

    python -m benchmarks.bench_metrics [--iterations 200000]

Each mode runs in a fresh interpreter, since prometheus-client picks its value class once, at import:
without PROMETHEUS_MULTIPROC_DIR (a plain `serve`), and with it set to a private temporary directory
(what `serve --workers N` does). Also timed: a scrape's `exposition` with one tool's series, which in
multiprocess mode reads and merges every process's files. The best of five repeats, in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import timeit

ENV = "PROMETHEUS_MULTIPROC_DIR"


def measure(iterations: int) -> None:
    """Runs in the child interpreter: prints the two figures."""
    from mcp_anything import metrics

    tool = metrics.ToolMetrics("bench", "get_item")
    tool.record("ok", 0.001)  # the children are made on the first call, as when serving

    def per_call_us(stmt: object, number: int) -> float:
        return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6  # type: ignore[arg-type]

    async def scrape_us() -> float:  # `exposition` runs on the serving event loop
        return per_call_us(lambda: metrics.exposition(0, 0, {"bench": "closed"}), max(1, iterations // 1000))

    record = per_call_us(lambda: tool.record("ok", 0.001), iterations)
    scrape = asyncio.run(scrape_us())
    print(f"{record:.2f} {scrape:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=200_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(args.iterations)
        return
    single_env = {k: v for k, v in os.environ.items() if k != ENV}
    command = [sys.executable, "-m", "benchmarks.bench_metrics", "--child", "--iterations", str(args.iterations)]
    print(f"{'mode':<28}{'record µs/call':>16}{'scrape µs':>12}")
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as directory:
        for mode, env in (("single process", single_env), ("multiprocess (--workers)", {**single_env, ENV: directory})):
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.split()
            print(f"{mode:<28}{out[0]:>16}{out[1]:>12}")


if __name__ == "__main__":
    main()
