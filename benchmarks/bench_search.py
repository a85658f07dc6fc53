"""Search discovery: index build time, search latency and memory on a generated 2,000-operation spec,
and the index libraries compared on the same fields (recall on the task queries, build, latency, memory).

    python -m benchmarks.bench_search [--operations 2000] [--queries 2000] [--engines]

Method: the spec comes from gen_spec.generate; its tools are built by the gateway's own loader.
Each engine is measured in a fresh child process, so that resident memory growth (VmRSS read from
/proc) includes importing the index library as well as building the index and searching. The build
(what a load or reload adds) runs BUILDS times on the already-built tools: the first build, its CPU
time and the median are reported; importing the library happens once per process and is reported
apart. Latency is per `search` call with a per-caller filter (half the tools allowed), over a
rotating set of task queries. `--engines` also compares plain per-field BM25 in bm25s and in
tantivy (same fields and weights, no verb lean, synonyms or coordination), with their recall on
benchmarks/search_queries.yaml (needs ../shared/specs).
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import percentile
from benchmarks.gen_spec import generate
from benchmarks.search_eval import SPECS, TUNING, load_tools
from mcp_anything.tools import Tool

BUILD_TARGET_S = 0.3
SEARCH_P50_TARGET_MS = 2.0
RSS_TARGET_MB = 50.0
BUILDS = 5
TASKS = [
    "list every resource17",
    "create a new resource 42",
    "delete resource 9 by id",
    "show the score of resource 123",
    "replace the name of resource 7",
    "which resources were created recently",
    "zzzz qqqq",
]

Search = Callable[[str, Callable[[str], bool], int], list[str]]


def _generate(operations: int) -> dict[str, Any]:
    return generate(operations, max(operations // 10, 10))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# --- engines: each builds from tools and returns a search function ------------------------------------


def mcp_anything(tools: Sequence[Tool]) -> Search:
    from mcp_anything.discovery.index import SearchIndex

    index = SearchIndex.build(tools)
    return lambda query, allowed, limit: [name for name, _ in index.search(query, allowed=allowed, limit=limit)]


def bm25s_plain(tools: Sequence[Tool]) -> Search:
    import bm25s
    import numpy as np

    from mcp_anything.discovery.fields import FIELDS, tool_fields
    from mcp_anything.discovery.index import WEIGHTS
    from mcp_anything.discovery.text import terms

    docs = tool_fields(tools)
    indexes = []
    for field in FIELDS:
        corpus = [doc[field] for doc in docs]
        if any(corpus):
            bm25 = bm25s.BM25()
            bm25.index(corpus, show_progress=False)
            indexes.append((WEIGHTS[field], bm25, set(bm25.vocab_dict)))
    names = [tool.name for tool in tools]

    def search(query: str, allowed: Callable[[str], bool], limit: int) -> list[str]:
        scores = np.zeros(len(names), dtype=np.float32)
        for weight, bm25, vocabulary in indexes:
            known = [t for t in terms(query) if t in vocabulary]
            if known:
                scores += weight * bm25.get_scores(known)
        order = np.argsort(-scores, kind="stable")
        return [names[i] for i in order if scores[i] > 0 and allowed(names[i])][:limit]

    return search


def tantivy_plain(tools: Sequence[Tool]) -> Search:
    import tantivy

    from mcp_anything.discovery.fields import FIELDS, tool_fields
    from mcp_anything.discovery.index import WEIGHTS
    from mcp_anything.discovery.text import terms

    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("doc", stored=True)
    for field in FIELDS:
        builder.add_text_field(field, tokenizer_name="whitespace")
    index = tantivy.Index(builder.build())  # in memory
    writer = index.writer(heap_size=15_000_000, num_threads=1)
    for i, doc in enumerate(tool_fields(tools)):
        writer.add_document(tantivy.Document(doc=i, **{f: " ".join(doc[f]) for f in FIELDS}))
    writer.commit()
    index.reload()
    searcher = index.searcher()
    names = [tool.name for tool in tools]

    def search(query: str, allowed: Callable[[str], bool], limit: int) -> list[str]:
        words = terms(query)
        if not words:
            return []
        parsed = index.parse_query(" ".join(words), list(FIELDS), field_boosts=WEIGHTS)
        # Filtering per caller needs every hit: tantivy returns a top-k, not a score per tool.
        hits = searcher.search(parsed, limit=len(names)).hits
        found = [names[searcher.doc(address)["doc"][0]] for _, address in hits]
        return [name for name in found if allowed(name)][:limit]

    return search


ENGINES: dict[str, Callable[[Sequence[Tool]], Search]] = {
    "mcp-anything": mcp_anything,
    "bm25s-plain": bm25s_plain,
    "tantivy-plain": tantivy_plain,
}
# What each engine imports: once per process in the gateway, so timed apart from the build.
LIBRARIES = {
    "mcp-anything": ["mcp_anything.discovery"],
    "bm25s-plain": ["bm25s", "mcp_anything.discovery"],
    "tantivy-plain": ["tantivy", "mcp_anything.discovery"],
}


# --- measurements --------------------------------------------------------------------------------------


def child(engine: str, spec_file: Path, queries: int) -> None:
    """Measure one engine in this (fresh) process and print the figures as JSON."""
    tools = load_tools(spec_file)
    allowed_names = {tool.name for i, tool in enumerate(tools) if i % 2 == 0}  # a caller who may use half
    rss_before = _rss_mb()
    started = time.perf_counter()
    for module in LIBRARIES[engine]:
        importlib.import_module(module)
    import_s = time.perf_counter() - started
    # The machine is shared: the first build is the one a load pays; CPU time is what contention does not inflate.
    builds, cpu = [], []
    for _ in range(BUILDS):
        started, started_cpu = time.perf_counter(), time.process_time()
        search = ENGINES[engine](tools)
        builds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    latencies = []
    for i in range(queries):
        started = time.perf_counter()
        search(TASKS[i % len(TASKS)], allowed_names.__contains__, 10)
        latencies.append(time.perf_counter() - started)
    print(
        json.dumps(
            {
                "engine": engine,
                "tools": len(tools),
                "import_s": import_s,
                "build_s": builds[0],
                "build_median_s": statistics.median(builds),
                "build_cpu_s": cpu[0],
                "p50_ms": percentile(latencies, 0.5) * 1000,
                "p95_ms": percentile(latencies, 0.95) * 1000,
                "rss_growth_mb": _rss_mb() - rss_before,
            }
        )
    )


def measure(engine: str, spec_file: Path, queries: int) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_search",
        "--child",
        engine,
        "--spec",
        str(spec_file),
        "--queries",
        str(queries),
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def recall(engine: str) -> tuple[float, float]:
    """Recall@5 and MRR (at 10) of an engine over every query of the query set."""
    import yaml

    hits5 = 0
    reciprocal = 0.0
    count = 0
    for spec in yaml.safe_load(TUNING.read_text())["specs"]:
        tools = load_tools(SPECS / spec["source"])
        aliases = {tool.name: {tool.name, tool.base_name, tool.operation_id} for tool in tools}
        search = ENGINES[engine](tools)
        for item in spec["queries"]:
            ranked = search(item["q"], lambda _name: True, 10)
            rank = next((i for i, name in enumerate(ranked, 1) if aliases[name] & set(item["expect"])), None)
            count += 1
            hits5 += rank is not None and rank <= 5
            reciprocal += 1 / rank if rank else 0.0
    return hits5 / count, reciprocal / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operations", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=2000, help="search calls per engine")
    parser.add_argument("--engines", action="store_true", help="also compare bm25s and tantivy")
    parser.add_argument("--child", choices=sorted(ENGINES), help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.spec, args.queries)
        return

    with tempfile.TemporaryDirectory() as tmp:
        spec_file = Path(tmp) / "generated.json"
        spec_file.write_text(json.dumps(_generate(args.operations)))
        engines = list(ENGINES) if args.engines else ["mcp-anything"]
        rows = [measure(engine, spec_file, args.queries) for engine in engines]
    with_recall = args.engines and SPECS.is_dir()
    header = f"{'engine':<15}{'tools':>6}{'import ms':>10}{'build ms':>10}{'CPU':>6}{'median':>8}"
    print(f"{header}{'p50 ms':>8}{'p95 ms':>8}{'RSS +MB':>9}", end="")
    print(f"{'R@5':>7}{'MRR':>7}" if with_recall else "")
    for row in rows:
        print(
            f"{row['engine']:<15}{row['tools']:>6}{row['import_s'] * 1000:>10.1f}{row['build_s'] * 1000:>10.1f}"
            f"{row['build_cpu_s'] * 1000:>6.0f}{row['build_median_s'] * 1000:>8.0f}{row['p50_ms']:>8.3f}"
            f"{row['p95_ms']:>8.3f}{row['rss_growth_mb']:>9.1f}",
            end="",
        )
        print("".join(f"{v:>7.3f}" for v in recall(row["engine"])) if with_recall else "")
    ours = rows[0]
    verdict = (
        ours["build_median_s"] <= BUILD_TARGET_S
        and ours["p50_ms"] <= SEARCH_P50_TARGET_MS
        and ours["rss_growth_mb"] <= RSS_TARGET_MB
    )
    print(
        f"targets: build <= {BUILD_TARGET_S * 1000:.0f} ms, p50 <= {SEARCH_P50_TARGET_MS} ms, "
        f"RSS <= +{RSS_TARGET_MB:.0f} MB: {'met' if verdict else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
