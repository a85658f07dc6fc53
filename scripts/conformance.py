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
import logging
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

# Operations no request can satisfy, with the proof: (spec file name, tool) -> explanation.
CANNOT_BE_CALLED_VALIDLY = {
    ("discriminators.json", "post_potentially_undefined_form_data"): (
        "The body is `oneOf: [ApplicationApprovedEvent, ApplicationDeniedEvent]`, and both are exactly "
        "`allOf: [BasePurchaseWebhookEvent]` (the `discriminator` mapping names them, but JSON Schema ignores it): "
        "every body matching one matches the other, so `oneOf` rejects every body, and the body is required."
    ),
    ("schema-types.json", "quirks_entirely_incompatible_all_of"): (
        "The required body is `allOf: [{type: string}, {type: integer}]`: no JSON value is both."
    ),
    ("schema-types.json", "quirks_partially_usable_incompatible_all_of"): (
        "The required body is `allOf: [{type: string}, {type: integer}]` (with a description): no JSON value is both."
    ),
    ("security-multiple.json", "post_anything_and"): (
        "Its only security requirement is `apiKey_header` AND `basic` AND `oauth2`: Basic and OAuth2 credentials "
        "both travel in the `Authorization` header, which carries one credential (RFC 9110 section 11.6.2), so no "
        "request can present both."
    ),
}

# Why a call was not accepted, by the text of its verdict: (pattern, who, explanation).
CAUSES = [
    (
        r"value\.split is not a function|startsWith is not a function|reading 'split'",
        "Prism",
        "Prism 5 crashes deserialising array/object path parameters (its URI template matcher already splits "
        "`a,b` into an array, then it calls `.split` on that array), and array/object header parameters that "
        "the request leaves out (it calls `.split` on `undefined`). The mock dies on the request; the run "
        "restarts it. Percent-encoding the `,` delimiters would avoid the crash but is not equivalent (RFC 3986 "
        "section 2.2: an encoded reserved character is data, not a delimiter), so the gateway keeps RFC 6570's "
        "literal delimiters.",
    ),
    (
        r"delimited style is only applicable to array",
        "spec + Prism",
        "The spec gives an object parameter `spaceDelimited`/`pipeDelimited` style; OpenAPI 3.0.3's style table "
        "defines it (`R%20100%20G%20200`), Prism does not and crashes on any request to the operation, with or "
        "without that parameter.",
    ),
    (
        r"Reserved characters used in request body",
        "Prism",
        "Prism applies `allowReserved: false` to multipart fields, which OpenAPI says to ignore outside "
        "`application/x-www-form-urlencoded`: the `,` between the items of a non-exploded `form` field counts "
        "as reserved.",
    ),
    (
        r"Request body property \S+ must be (array|object)",
        "Prism",
        "Prism parses form bodies (urlencoded and multipart) into a flat map where a repeated field keeps "
        "its last value, and reads an object part as a string: repeated fields, which OpenAPI's default "
        "`form`/`explode: true` encoding prescribes for arrays (and which Twilio's API expects), never "
        "become an array there.",
    ),
    (
        r"No supported content types, but request included a non-empty body",
        "spec + Prism",
        "A Swagger 2.0 operation with a body parameter and no `consumes` (neither on the operation nor "
        "globally): the gateway sends JSON (what Swagger tooling assumes), Prism accepts no request body at all.",
    ),
    (
        r"must match exactly one schema in oneOf",
        "spec",
        "Overlapping `oneOf` alternatives with no value matching exactly one (see the proof above).",
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
        "The input schema cannot be satisfied (see the proof above): no call can be valid, so none is sent; "
        "each counts as not accepted.",
    ),
    (
        r"Invalid security scheme used",
        "spec",
        "The security requirement cannot be met by one request (see the proof above).",
    ),
]


# Why each kind of finding remains in these specs (see docs/openapi.md, "Findings").
FINDING_CAUSES = {
    "derived_name": "The spec gives the operation no operationId, so the tool is named after its method and path "
    "(stable, but renaming the path renames the tool). Listed per spec.",
    "schema_loosened": "A recursive schema is expanded two levels deep and then accepts any value of its type "
    "(tool schemas must be self-contained: many clients do not follow `$ref`); a `oneOf` in a result is checked as "
    "`anyOf`, so a result that matches two overlapping branches still reaches the caller; a keyword with no "
    "JSON Schema 2020-12 equivalent is not checked. The upstream still validates what it receives.",
    "schema_unsatisfiable": "The spec's schema admits no value (an `allOf` of types that exclude each other, a `oneOf` "
    "listing the same branch twice): the gateway keeps it as written, so no call can be valid, and says so.",
    "output_schema_omitted": "The 2xx responses differ (another schema, or no content beside a JSON one) or the result "
    "is a union at the top: no single outputSchema holds for every result, so none is advertised and results are "
    "returned as received.",
    "servers_ignored": "The operation (or its path item) names its own `servers`: the gateway sends every call of an "
    "upstream to that upstream's base URL. Serve such operations through a second upstream (`include`) with "
    "its own `base_url`.",
    "parameter_dropped": "A header parameter the gateway owns (`Authorization`, `Accept`, ...) is set by the gateway, "
    "not by the caller.",
}


def findings_section(results: list[SpecResult]) -> list[str]:
    """Every finding the loader reports on these specs, by kind, with why it remains."""
    found = [(r.spec, f) for r in results for f in r.findings]
    kinds = Counter((f.kind, f.changes_calls) for _, f in found)
    lines = [
        "## Findings",
        "",
        "What the tools approximate of the specs as written (`mcp-anything validate` prints these; `serve` logs them "
        "and exports `mcp_anything_spec_findings`). None is silent: tests/test_openapi_corpus.py audits every "
        "tool of every spec here against its operation and fails on anything left out without a finding.",
        "",
        "| kind | changes what can be called | findings |",
        "|---|---|---:|",
    ]
    lines += [f"| {kind} | {'yes' if changes else 'no'} | {n} |" for (kind, changes), n in sorted(kinds.items())]
    if not found:
        lines += ["", "None."]
    for kind in sorted({f.kind for _, f in found}):
        lines += ["", f"### {kind}", "", FINDING_CAUSES.get(kind, "unexplained: investigate"), ""]
        of_kind = [(spec, f) for spec, f in found if f.kind == kind]
        if kind == "derived_name":
            per_spec = Counter(spec for spec, _ in of_kind)
            lines += [f"- `{spec}`: {n} operation(s)" for spec, n in sorted(per_spec.items())]
            continue
        lines += [f"- `{spec}` {f.operation}: {f.message}" for spec, f in of_kind]
    return lines


def cause(spec: str, call: Call) -> tuple[str, str]:
    proof = CANNOT_BE_CALLED_VALIDLY.get((Path(spec).name, call.tool))
    if proof is not None:
        return "spec (cannot be called validly)", proof
    for pattern, who, explanation in CAUSES:
        if re.search(pattern, call.detail):
            return who, explanation
    return "gateway", "unexplained: investigate"


def specs_to_run(arguments: list[str]) -> list[Path]:
    if arguments:
        return [Path(a).resolve() for a in arguments]
    return sorted(p for p in SHARED.rglob("*.json") if "LICENSE" not in p.name)


def render(results: list[SpecResult], calls_per_tool: int, seconds: float) -> str:
    calls = [(r.spec, c) for r in results for c in r.calls]
    totals = Counter(c.outcome for _, c in calls)
    failed = [(spec, c) for spec, c in calls if c.outcome != ACCEPTED]
    blame = Counter(cause(spec, c)[0] for spec, c in failed)
    lines = [
        "# Conformance against real specs",
        "",
        "Generated by `python scripts/conformance.py --write docs/conformance.md` (do not edit by hand).",
        "",
        f"Every spec under `../shared/specs` is loaded, its tools are served by the real gateway in front "
        f"of Prism (`@stoplight/prism-cli mock`, which validates each request against the original spec), "
        f"and every tool is called {calls_per_tool} times through the official MCP client with arguments "
        f"generated from its input schema (tests/support/arguments.py): once with only the required "
        f"arguments, once with all of them, then at random. Generated values prefer the spec's own examples; "
        f"for a `oneOf` they match exactly one alternative as the spec wrote it, the discriminator's value "
        f"pinned (where alternatives overlap, by adding a property the other alternatives reject, as a "
        f"careful caller would); an optional property for which no such value exists is left out (listed "
        f"below). The "
        f"gateway is configured as an operator would for the spec's security schemes (placeholder "
        f"credentials; Basic-only operations through a second upstream sending Basic), with retries and "
        f"the circuit breaker off, so that each call is one request and a crash of the mock (which the run "
        f"restarts) is not held against the next calls.",
        "",
        "A call is *accepted* when Prism found no violation in the request (for a request Prism never "
        "answered, when its log says the request passed validation). Every other call counts against the "
        "figure: rejected, crashed Prism, not sent (no valid arguments exist), needs credentials.",
        "",
        f"**{totals[ACCEPTED]} of {len(calls)} calls accepted "
        f"({100 * totals[ACCEPTED] / max(len(calls), 1):.1f}%)**; {len(results)} specs, "
        f"{sum(r.operations for r in results)} operations, {sum(r.tools for r in results)} tools, "
        f"none excluded, {seconds:.0f} s.",
        "",
        "Calls not accepted, by where the cause lies: "
        + (", ".join(f"{who}: {n}" for who, n in blame.most_common()) or "none")
        + ". Anything attributed to `gateway` is a bug to fix.",
        "",
        "| spec | operations | tools | skipped | calls | accepted | rejected | result refused | not sent "
        "| needs credentials | crashed Prism |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        name = r.spec if r.error is None else f"{r.spec} (**error**: {r.error})"
        counts = " | ".join(str(r.count(o)) for o in OUTCOMES)
        lines.append(f"| {name} | {r.operations} | {r.tools} | {len(r.skipped)} | {len(r.calls)} | {counts} |")
    lines += ["", "## Cannot be called validly", ""]
    proven = sorted({(Path(spec).name, c.tool) for spec, c in failed} & set(CANNOT_BE_CALLED_VALIDLY))
    lines += [f"- `{spec}` `{tool}`: {CANNOT_BE_CALLED_VALIDLY[(spec, tool)]}" for spec, tool in proven] or ["None."]
    lines += ["", "## Calls not accepted, and why", ""]
    by_cause: dict[tuple[str, str], list[str]] = {}
    for spec, call in failed:
        by_cause.setdefault(cause(spec, call), []).append(f"`{spec}` `{call.tool}` ({call.outcome}): {call.detail}")
    if not by_cause:
        lines.append("None.")
    for (who, explanation), listed in by_cause.items():
        lines += [f"### {who}: {explanation}", "", f"{len(listed)} call(s):", ""]
        lines += [f"- {c[:400]}" for c in listed]
        lines.append("")
    noted = [f"- `{spec}` `{c.tool}`: {c.detail}" for spec, c in calls if c.outcome == ACCEPTED and c.detail]
    lines += [
        "## Accepted calls with a note",
        "",
        "Optional arguments the generator left out, requests Prism accepted but never answered, and "
        "responses that contradict the spec's own response schema (Prism answers with the spec's examples; "
        "the gateway returns those as an `isError` result naming the mismatch, with the data).",
        "",
    ]
    lines += noted or ["None."]
    skipped = [(r.spec, s) for r in results for s in r.skipped]
    lines += ["", "## Operations without a tool", ""]
    lines += [f"- `{spec}` {label}: {reason}" for spec, (label, reason) in skipped] or ["None."]
    lines += ["", *findings_section(results)]
    return "\n".join(lines) + "\n"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="*", help="spec files (default: every spec under ../shared/specs)")
    parser.add_argument("--calls-per-tool", type=int, default=3)
    parser.add_argument("--write", type=Path, help="write the Markdown report to this file")
    args = parser.parse_args()
    logging.getLogger("mcp_anything").setLevel(logging.ERROR)  # drifting responses are reported, not logged
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
                print(f"  {r.spec} {call.tool} [{call.outcome}] {cause(r.spec, call)[0]}: {call.detail}")
    if args.write:
        args.write.write_text(report)


if __name__ == "__main__":
    asyncio.run(main())
