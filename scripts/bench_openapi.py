"""Tool build time for a generated spec (2,000 operations, 200 inter-referencing schemas) and Twilio.

    python scripts/bench_openapi.py [--operations 2000 --schemas 200] [--repeat 5]

Prints, per spec: operations, tools, best and median build time (spec parsing included),
the total size of the tool definitions as JSON, the time to serialise them all (one
uncached `tools/list` body) and the process's peak resident memory so far.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import orjson
from gen_spec import generate  # scripts/ is on sys.path when this script runs

from mcp_anything.config import parse_config
from mcp_anything.openapi import load_upstream_tools

TWILIO = Path(__file__).resolve().parents[1].parent / "shared" / "specs" / "twilio" / "twilio_api_v2010.json"


def measure(label: str, source: Path, repeat: int) -> None:
    upstream = {"name": "bench", "base_url": "http://127.0.0.1:9", "openapi": {"source": str(source)}}
    config = parse_config({"groups": [{"name": "g", "upstreams": ["bench"]}], "upstreams": [upstream]})
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = load_upstream_tools(config.upstreams[0], config, "upstreams[0]")
        times.append(time.perf_counter() - start)
    size = sum(len(orjson.dumps(t.definition)) for t in result.tools)
    start = time.perf_counter()
    orjson.dumps({"tools": [t.definition for t in result.tools]})
    listing = time.perf_counter() - start
    print(
        f"{label:<28} operations={result.operations:<5} tools={len(result.tools):<5} "
        f"build best={min(times) * 1000:.0f}ms median={statistics.median(times) * 1000:.0f}ms "
        f"definitions={size / 1024:.0f}KB serialize-all={listing * 1000:.1f}ms "
        f"peak-rss={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operations", type=int, default=2000)
    parser.add_argument("--schemas", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "generated.json"
        spec.write_text(json.dumps(generate(args.operations, args.schemas)))
        measure(f"generated {args.operations}/{args.schemas}", spec, args.repeat)
    if TWILIO.is_file():
        measure("twilio_api_v2010", TWILIO, args.repeat)


if __name__ == "__main__":
    main()
