"""Cost of checking a result against its tool's output schema (jsonschema-rs, compiled once per tool).

    python -m benchmarks.bench_output [--repeat 2000]

For every Twilio tool with an output schema: a conforming result generated from that
schema (lists with 20 items), then the time of one check, as the gateway does it per call
(`Tool.check_output`). Prints the median and the 95th percentile over the tools, and the
same for a mismatching result (where the first error is also extracted and described).
"""

from __future__ import annotations

import argparse
import statistics
import time
from random import Random

import orjson

from benchmarks.common import SHARED_SPECS, percentile
from mcp_anything.config import parse_config
from mcp_anything.openapi import load_upstream_tools
from tests.support.arguments import FULL, generate  # the value generator lives with the tests

TWILIO = SHARED_SPECS / "twilio" / "twilio_api_v2010.json"


def per_call(check: object, value: object, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        check(value)  # type: ignore[operator]
    return (time.perf_counter() - started) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    upstream = {"name": "bench", "base_url": "http://127.0.0.1:9", "openapi": {"source": str(TWILIO)}}
    config = parse_config(
        {
            "groups": [{"name": "g", "upstreams": ["bench"], "inbound_auth": {"strategy": "none"}}],
            "upstreams": [upstream],
        },
        env={},
    )
    tools = [t for t in load_upstream_tools(config.upstreams[0], config, "u").tools if t.check_output is not None]
    rng = Random(0)
    good, bad, sizes = [], [], []
    for tool in tools:
        value = generate(tool.output_schema, rng, FULL)
        for key, items in value.items():  # list results: 20 records, as a page of results would be
            if isinstance(items, list) and items:
                value[key] = items * (20 // len(items) + 1)
        if tool.check_output(value) is not None:
            continue  # the generator could not satisfy this schema; not a timing sample
        sizes.append(len(orjson.dumps(value)))
        good.append(per_call(tool.check_output, value, args.repeat))
        broken = {**value, next(iter(value)): {"unexpected": True}}
        if tool.check_output(broken) is not None:
            bad.append(per_call(tool.check_output, broken, args.repeat // 4))
    for label, samples in (("conforming", good), ("mismatching", bad)):
        print(
            f"{label:<12} {len(samples):>4} tools: median {percentile(samples, 0.5) * 1e6:7.1f} us, "
            f"p95 {percentile(samples, 0.95) * 1e6:7.1f} us per check"
        )
    print(f"result size: median {statistics.median(sizes) / 1024:.1f} KiB, max {max(sizes) / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
