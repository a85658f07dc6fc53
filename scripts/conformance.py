"""Real-spec conformance: every tool of every spec in ../shared/specs, called through the gateway, judged by Prism.

    python scripts/conformance.py [--calls-per-tool 3] [--write docs/conformance.md] [SPEC ...]

For each spec: load it, build the tools, serve them through the real gateway in front of
`prism mock` (which validates every request against the original spec), and call every
tool with arguments generated from its input schema (one call with only the required
arguments, one with all of them, the rest random). Prints, per spec: operations, tools
built, calls made, calls Prism accepted; then every call that was not accepted and why.
See tests/support/conformance.py for how a verdict is reached.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the harness lives with the tests it shares code with

from tests.support.conformance import (  # noqa: E402
    ACCEPTED,
    BAD_RESULT,
    CREDENTIALS,
    NOT_SENT,
    PRISM_CRASH,
    REJECTED,
    Call,
    SpecResult,
    run_spec,
)

SHARED = ROOT.parent / "shared" / "specs"
OUTCOMES = (ACCEPTED, REJECTED, BAD_RESULT, NOT_SENT, CREDENTIALS, PRISM_CRASH)

# Why a call was not accepted, by the text of its verdict: (pattern, who, explanation).
CAUSES = [
    (
        r"value\.split is not a function|startsWith is not a function|reading 'split'",
        "Prism",
        "Prism 5 crashes deserialising array/object path parameters and some header parameters "
        "(any request to such an operation kills the mock, which the run then restarts).",
    ),
    (
        r"delimited style is only applicable to array",
        "spec + Prism",
        "The spec gives an object parameter `spaceDelimited`/`pipeDelimited` style (OpenAPI defines these "
        "for arrays); Prism crashes on any request to the operation.",
    ),
    (
        r"no answer within the timeout",
        "spec + Prism",
        "The operation's only response is an informational 1xx status; Prism sends it as the final "
        "response, which HTTP clients treat as interim, so the call times out.",
    ),
    (
        r"Reserved characters used in request body",
        "Prism",
        "Prism applies `allowReserved: false` to multipart fields without splitting them first: the `,` "
        "between the items of a non-exploded `form` field (or inside a JSON object part) counts as reserved.",
    ),
    (
        r"Request body property \S+ must be (array|object)",
        "Prism",
        "Prism parses form bodies (urlencoded and multipart) without their schema: repeated fields, which "
        "OpenAPI's default `form`/`explode: true` style prescribes for arrays (and which Twilio's API expects), "
        "are not read as an array; Prism only accepts `name[]=` keys. Objects sent as JSON parts likewise.",
    ),
    (
        r"No supported content types, but request included a non-empty body",
        "spec + Prism",
        "A Swagger 2.0 operation without `consumes`: the gateway sends JSON (the common default), Prism "
        "accepts no request body at all.",
    ),
    (
        r"must match exactly one schema in oneOf",
        "spec",
        "The `oneOf` alternatives overlap (none forbids the others' properties); the spec relies on its "
        "`discriminator`, which JSON Schema validation ignores, so most values match several alternatives.",
    ),
    (
        r"must have required property 'authorization'",
        "gateway (by design)",
        "The spec declares an `Authorization` header parameter and no security scheme: the gateway never "
        "takes `Authorization` as a tool argument (outbound auth owns it), so this run sends none.",
    ),
    (
        r"enum \(with example\) \*required",
        "Prism",
        "Prism validates this PUT against the body schema of the POST operation on the same path.",
    ),
    (
        r"Invalid structured content returned",
        "spec",
        "Prism answers with the spec's own response examples, which contradict the spec's response schemas "
        "(Twilio: prices as strings where the schema says number, empty SIDs under `minLength: 34`); the MCP "
        "client checks results against the tool's outputSchema and refuses them. A real upstream that "
        "deviates from its spec the same way would hit the same refusal.",
    ),
    (
        r"Request header parameter \S+ must be object",
        "spec",
        "An array of objects in a header has no serialization in OpenAPI (`simple` style covers arrays of "
        "primitives): the gateway sends each item as JSON, comma-separated; Prism reads strings.",
    ),
    (
        r"no valid arguments exist",
        "spec",
        "The input schema cannot be satisfied (e.g. `allOf` of `string` and `integer`, or an enum whose "
        "values do not match its type): no call can be valid, so none is sent.",
    ),
    (
        r"Invalid security scheme used",
        "run",
        "The operation needs Basic credentials while the spec also has a Bearer scheme: one upstream sends "
        "one `Authorization` header, and the run picks Bearer. Prism checks security before anything else.",
    ),
]


def cause(call: Call) -> tuple[str, str]:
    if call.outcome == CREDENTIALS:
        return CAUSES[-1][1:]
    for pattern, who, explanation in CAUSES:
        if re.search(pattern, call.detail):
            return who, explanation
    return "gateway", "unexplained: investigate"


def specs_to_run(arguments: list[str]) -> list[Path]:
    if arguments:
        return [Path(a).resolve() for a in arguments]
    return sorted(p for p in SHARED.rglob("*.json") if "LICENSE" not in p.name)


def render(results: list[SpecResult], calls_per_tool: int, seconds: float) -> str:
    totals = Counter(c.outcome for r in results for c in r.calls)
    judged = totals[ACCEPTED] + totals[REJECTED] + totals[BAD_RESULT]
    failed = [c for r in results for c in r.calls if c.outcome != ACCEPTED]
    blame = Counter(cause(c)[0] for c in failed)
    lines = [
        "# Conformance against real specs",
        "",
        "Generated by `python scripts/conformance.py --write docs/conformance.md` (do not edit by hand).",
        "",
        f"Every spec under `../shared/specs` is loaded, its tools are served by the real gateway in front "
        f"of Prism (`@stoplight/prism-cli mock`, which validates each request against the original spec), "
        f"and every tool is called {calls_per_tool} times through the official MCP client with arguments "
        f"generated from its input schema: once with only the required arguments, once with all of them, "
        f"then at random. A call is *accepted* when Prism reports no request violation; *rejected* when it "
        f"does; *result refused* when the MCP client rejects the result against the tool's outputSchema. "
        f"Calls that crashed Prism, that needed credentials of a kind the run cannot present, or that "
        f"could not be generated (unsatisfiable input schema) are listed apart with their causes.",
        "",
        f"**{totals[ACCEPTED]} of {judged} judged calls accepted "
        f"({100 * totals[ACCEPTED] / max(judged, 1):.1f}%)**; {len(results)} specs, "
        f"{sum(r.operations for r in results)} operations, {sum(r.tools for r in results)} tools, "
        f"{sum(len(r.calls) for r in results)} calls, {seconds:.0f} s.",
        "",
        "Calls not accepted, by where the cause lies: "
        + (", ".join(f"{who}: {n}" for who, n in blame.most_common()) or "none")
        + ". Anything attributed to `gateway` without `(by design)` is a bug to fix.",
        "",
        "| spec | operations | tools | skipped | calls | accepted | rejected | result refused | not sent "
        "| needs credentials | crashed Prism |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        name = r.spec if r.error is None else f"{r.spec} (**error**: {r.error})"
        counts = " | ".join(str(r.count(o)) for o in OUTCOMES)
        lines.append(f"| {name} | {r.operations} | {r.tools} | {len(r.skipped)} | {len(r.calls)} | {counts} |")
    lines += ["", "## Calls not accepted, and why", ""]
    by_cause: dict[tuple[str, str], list[str]] = {}
    for r in results:
        for call in r.calls:
            if call.outcome != ACCEPTED:
                key = cause(call)
                by_cause.setdefault(key, []).append(f"`{r.spec}` `{call.tool}` ({call.outcome}): {call.detail}")
    if not by_cause:
        lines.append("None.")
    for (who, explanation), calls in by_cause.items():
        lines += [f"### {who}: {explanation}", "", f"{len(calls)} call(s):", ""]
        lines += [f"- {c[:400]}" for c in calls]
        lines.append("")
    skipped = [(r.spec, s) for r in results for s in r.skipped]
    lines += ["## Operations without a tool", ""]
    lines += [f"- `{spec}` {label}: {reason}" for spec, (label, reason) in skipped] or ["None."]
    return "\n".join(lines) + "\n"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", help="spec files (default: every spec under ../shared/specs)")
    parser.add_argument("--calls-per-tool", type=int, default=3)
    parser.add_argument("--write", type=Path, help="write the Markdown report to this file")
    args = parser.parse_args()
    started = time.monotonic()
    results = []
    print(f"{'spec':<44} {'ops':>5} {'tools':>5} {'calls':>5} {'accepted':>8}")
    for spec in specs_to_run(args.specs):
        name = str(spec.relative_to(SHARED)) if spec.is_relative_to(SHARED) else spec.name
        result = await run_spec(spec, args.calls_per_tool, name=name)
        results.append(result)
        print(
            f"{result.spec:<44} {result.operations:>5} {result.tools:>5} {len(result.calls):>5} "
            f"{result.count(ACCEPTED):>8}" + (f"  ERROR {result.error}" if result.error else "")
        )
    report = render(results, args.calls_per_tool, time.monotonic() - started)
    summary = next(line for line in report.splitlines() if line.startswith("**"))
    print(summary)
    for r in results:
        for call in r.calls:
            if call.outcome != ACCEPTED:
                print(f"  {r.spec} {call.tool} [{call.outcome}] {call.detail}")
    if args.write:
        args.write.write_text(report)


if __name__ == "__main__":
    asyncio.run(main())
