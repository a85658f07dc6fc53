"""Search quality: recall@1/5/10 and MRR of `SearchIndex` on task queries over real specs.

    python -m benchmarks.search_eval [QUERIES.yaml ...] [--specs ../shared/specs] [--misses]

Without query files it evaluates the tuning set (search_queries.yaml) and the held-out set
(search_queries_heldout.yaml), each reported on its own.

Each query names the operations (operationId or tool name) that would serve it; the rank of the
first of them in the results counts. Tools are loaded through the gateway's own OpenAPI loader.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import SHARED_SPECS as SPECS
from mcp_anything.config import parse_config
from mcp_anything.openapi import load_upstream_tools
from mcp_anything.tools import Tool

TUNING = Path(__file__).with_name("search_queries.yaml")
HELDOUT = Path(__file__).with_name("search_queries_heldout.yaml")  # never tuned on: measures generality
DEPTH = 10


@dataclass
class SpecResult:
    name: str
    tools: int
    build_s: float
    ranks: list[int | None] = field(default_factory=list)  # 1-based rank of the first expected tool
    misses: list[str] = field(default_factory=list)

    def recall(self, k: int) -> float:
        return sum(1 for r in self.ranks if r is not None and r <= k) / len(self.ranks)

    def mrr(self) -> float:
        return sum(1 / r for r in self.ranks if r is not None) / len(self.ranks)


def load_tools(source: Path) -> list[Tool]:
    upstream = {"name": "eval", "base_url": "http://127.0.0.1:9", "openapi": {"source": str(source)}}
    config = parse_config(
        {
            "groups": [{"name": "g", "upstreams": ["eval"], "inbound_auth": {"strategy": "none"}}],
            "upstreams": [upstream],
        }
    )
    return load_upstream_tools(config.upstreams[0], config, "upstreams[0]").tools


def evaluate(spec: dict[str, Any], specs: Path) -> SpecResult:
    # Imported here so that benchmarks/bench_search.py can load tools before the index library is imported.
    from mcp_anything.discovery.index import SearchIndex

    tools = load_tools(specs / spec["source"])
    started = time.perf_counter()
    index = SearchIndex.build(tools)
    result = SpecResult(spec["name"], len(tools), time.perf_counter() - started)
    aliases = {tool.name: {tool.name, tool.base_name, tool.operation_id} for tool in tools}
    known = set().union(*aliases.values())
    for item in spec["queries"]:
        expected = set(item["expect"])
        if not expected <= known:
            raise SystemExit(f"{spec['name']}: {item['q']!r} expects unknown operations {sorted(expected - known)}")
        ranked = [name for name, _ in index.search(item["q"], limit=DEPTH)]
        rank = next((i for i, name in enumerate(ranked, 1) if aliases[name] & expected), None)
        result.ranks.append(rank)
        if rank is None or rank > 1:
            result.misses.append(f"  {rank or '-':>2}  {item['q']!r} -> {ranked[:3]} (want {sorted(expected)})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("queries", type=Path, nargs="*", default=[TUNING, HELDOUT], help="query set files")
    parser.add_argument("--specs", type=Path, default=SPECS)
    parser.add_argument("--misses", action="store_true", help="list every query whose answer is not first")
    args = parser.parse_args()
    if not args.specs.is_dir():
        sys.exit(f"no specs at {args.specs}")
    for path in args.queries:
        print(f"# {path.name}")
        report([evaluate(spec, args.specs) for spec in yaml.safe_load(path.read_text())["specs"]], args.misses)


def report(results: list[SpecResult], misses: bool) -> None:
    ranks = [rank for r in results for rank in r.ranks]
    total = SpecResult("all", sum(r.tools for r in results), sum(r.build_s for r in results), ranks)
    print(f"{'spec':<14}{'tools':>6}{'queries':>8}{'build ms':>9}{'R@1':>7}{'R@5':>7}{'R@10':>7}{'MRR':>7}")
    for r in [*results, total]:
        print(
            f"{r.name:<14}{r.tools:>6}{len(r.ranks):>8}{r.build_s * 1000:>9.1f}"
            f"{r.recall(1):>7.3f}{r.recall(5):>7.3f}{r.recall(10):>7.3f}{r.mrr():>7.3f}"
        )
    if misses:
        for r in results:
            print(f"\n{r.name} (rank, query, top 3):")
            print("\n".join(r.misses))
    print()


if __name__ == "__main__":
    main()
