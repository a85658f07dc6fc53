"""MCP `tools/call` results: how an upstream's answer becomes a result.

A JSON answer becomes text plus `structuredContent` (checked against the tool's outputSchema),
a textual one text, anything else an embedded binary resource; a non-2xx answer, or one that breaks
the tool's declared contract, becomes an `isError` result that quotes it (RFC 9457 problem details
rendered as one line).

Shaping happens here, between parsing and the output-schema check, so every path that sends a
call upstream returns the same result: the group's response filters for the caller (a
`shape.CallerView`), then the tool's result budget. The text content is rendered from what is
left, never from the original. A filtered tool never shows what its filters cannot check: a
non-JSON answer is withheld, an error answer is quoted only as JSON after the filters.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

import orjson

from mcp_anything.tools import Tool

if TYPE_CHECKING:
    from mcp_anything.server.shape import CallerView

log = logging.getLogger("mcp_anything.upstream")

ERROR_BODY_CHARS = 2000  # how much of a non-2xx body an isError result quotes


def error_result(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}


def text_result(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": False}


def http_result(
    upstream: str, tool: Tool, status: int, content_type: str, body: bytes, view: CallerView | None = None
) -> dict[str, Any]:
    """The result for an upstream's HTTP answer to `tool`; `view`: the caller's response filters, if any apply."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if view is not None:
        refusal = view.refusal()
        if refusal is not None:
            return error_result(refusal)
    if not 200 <= status < 300:
        return error_result(_describe_error(upstream, tool, status, media_type, body, view))
    if _is_json(media_type):
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError as exc:
            # Not a result: a tool with an output schema must return structured content, and a caller
            # cannot tell a half-written document from a whole one.
            excerpt = "" if view is not None else ": " + body[:200].decode("utf-8", "replace")
            return error_result(
                f"Upstream '{upstream}' sent invalid {media_type} for {tool.method} {tool.path} ({exc}){excerpt}"
            )
        return _json_result(upstream, tool, data, body, view)
    if view is not None and body:
        return error_result(
            f"Upstream '{upstream}' answered {tool.method} {tool.path} with {media_type or 'no content type'}, which"
            " this tool's response filters cannot check, so the response was withheld"
        )
    if tool.check_output is not None:
        # The client refuses a successful result without the structuredContent the outputSchema promises.
        return error_result(_not_the_declared_json(upstream, tool, status, media_type, body))
    if not body:
        return text_result(f"HTTP {status} (no content)")
    if _is_text(media_type):
        text = body.decode("utf-8", "replace")
        if tool.budget is not None and len(body) > tool.budget.max_bytes:
            cut = tool.budget.cut_text(text)
            text = f"{cut.value}\n\n{cut.note}"
        return text_result(text)
    return _binary_result(upstream, tool, media_type, body)


def _json_result(upstream: str, tool: Tool, data: Any, body: bytes, view: CallerView | None) -> dict[str, Any]:
    """A JSON response as a result: filtered, cut to the budget, then checked against the tool's outputSchema.

    The MCP client refuses a successful result whose structuredContent contradicts the outputSchema
    (or that has none), so an upstream drifting from its spec becomes an `isError` result instead:
    clients do not check those, and the caller still gets the data, after the mismatch.
    """
    check_output = tool.check_output
    rendered = False  # whether the text must be rendered from `data` rather than be the body as received
    if view is not None:
        data = view.apply(data)
        check_output = view.check_output
        rendered = True
    note = None
    budget = tool.budget
    # Compact JSON is never longer than the body it came from, so a body within budget needs no measuring.
    if budget is not None and len(body) > budget.max_bytes:
        cut = budget.cut_json(data)
        data, note = cut.value, cut.note
        rendered = True
    text = orjson.dumps(data).decode() if rendered else body.decode("utf-8", "replace")
    if note is not None:
        text = f"{text}\n\n{note}"
    if isinstance(data, dict) and not tool.wraps_result:
        structured = data
    elif tool.objects_only:
        return text_result(text)
    else:
        structured = {"result": data}
    mismatch = check_output(structured) if check_output is not None else None
    if mismatch is not None:
        fields = {"tool": tool.name, "upstream": upstream, "where": mismatch.where, "keyword": mismatch.keyword}
        log.warning("upstream response does not match the tool's output schema", extra={"fields": fields})
        message = (
            f"Upstream '{upstream}' answered {tool.method} {tool.path} with JSON that does not match the output "
            f"schema its spec declares ({mismatch.where}: {mismatch.message}). "
            # A filtered caller must not learn that anything was removed: no "as received" then.
            + ("The response" if rendered else "The response as received")
            + f":\n{text}"
        )
        return error_result(message)
    return {"content": [{"type": "text", "text": text}], "structuredContent": structured, "isError": False}


def _binary_result(upstream: str, tool: Tool, media_type: str, body: bytes) -> dict[str, Any]:
    resource = {
        "uri": f"mcp-anything://{upstream}{tool.path}",
        "mimeType": media_type or "application/octet-stream",
        "blob": base64.b64encode(body).decode("ascii"),
    }
    return {"content": [{"type": "resource", "resource": resource}], "isError": False}


def _not_the_declared_json(upstream: str, tool: Tool, status: int, media_type: str, body: bytes) -> str:
    answer = f"HTTP {status} " + (
        f"with {media_type or 'no content type'} ({len(body)} bytes)" if body else "and no body"
    )
    text = body[:ERROR_BODY_CHARS].decode("utf-8", "replace") if body and _is_text(media_type) else ""
    return (
        f"Upstream '{upstream}' answered {tool.method} {tool.path} with {answer} instead of the JSON result its spec"
        " declares" + (f":\n{text}" if text else "")
    )


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _is_text(media_type: str) -> bool:
    return (
        media_type.startswith("text/")
        or media_type.endswith(("+xml", "/xml", "/javascript", "/x-www-form-urlencoded", "/yaml"))
        or media_type == ""
    )


def _describe_error(
    upstream: str, tool: Tool, status: int, media_type: str, body: bytes, view: CallerView | None
) -> str:
    text = body.decode("utf-8", "replace") if view is None else _filtered_error_body(media_type, body, view)
    if media_type == "application/problem+json":
        text = _render_problem(text)
    if len(text) > ERROR_BODY_CHARS:
        text = text[:ERROR_BODY_CHARS] + f"... ({len(body)} bytes, truncated)"
    return f"Upstream '{upstream}' returned HTTP {status} for {tool.method} {tool.path}" + (f": {text}" if text else "")


def _filtered_error_body(media_type: str, body: bytes, view: CallerView) -> str:
    """An error answer of a filtered tool, as the filters leave it: only JSON can be filtered, the rest is dropped."""
    if not body or not _is_json(media_type):
        return ""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    return orjson.dumps(view.apply(data)).decode()


def _render_problem(text: str) -> str:
    """RFC 9457 problem details as one readable line: `title: detail (type)`."""
    try:
        problem = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if not isinstance(problem, dict):
        return text
    parts = [str(problem[k]) for k in ("title", "detail") if problem.get(k)]
    rendered = ": ".join(parts) or text
    extras = {k: v for k, v in problem.items() if k not in ("title", "detail", "status")}
    return rendered + (f" {orjson.dumps(extras).decode()}" if extras else "")
