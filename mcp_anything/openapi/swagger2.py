"""Swagger 2.0 to the OpenAPI 3.0 model, so one builder serves both.

`host` + `basePath` + `schemes` become `servers`; `definitions`, `parameters` and
`responses` move under `components` (local `$ref`s are rewritten to match); `body`
parameters become a `requestBody` for every `consumes` media type; `formData`
parameters become an object body (multipart when `consumes` says so or a parameter
is a file, else form-urlencoded); `collectionFormat` becomes `style`/`explode`;
response `schema`s get one content entry per `produces` media type; `x-nullable`
becomes `nullable`.
"""

from __future__ import annotations

from typing import Any

_SCHEMA_KEYS = (
    "type",
    "format",
    "items",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "enum",
    "multipleOf",
    "nullable",
)
_COLLECTION_STYLES = {
    "csv": ("form", False),
    "ssv": ("spaceDelimited", False),
    "pipes": ("pipeDelimited", False),
    "multi": ("form", True),
}
_REF_PREFIXES = {
    "#/definitions/": "#/components/schemas/",
    "#/parameters/": "#/components/parameters/",
    "#/responses/": "#/components/responses/",
}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch")


def unconvertible(spec: dict[str, Any]) -> list[str]:
    """Path items and operations given as `$ref`s: what they point at is Swagger 2.0 that is never converted."""
    found = []
    for path, item in (spec.get("paths") or {}).items():
        if isinstance(item, dict) and "$ref" in item:
            found.append(f"paths.{path}")
        for method in METHODS:
            node = item.get(method) if isinstance(item, dict) else None
            if isinstance(node, dict) and "$ref" in node:
                found.append(f"paths.{path}.{method}")
    return [f"{where}: a Swagger 2.0 path item or operation given as a $ref is not supported" for where in found]


def convert(spec: dict[str, Any]) -> dict[str, Any]:
    spec = _rewrite(spec)
    consumes = spec.get("consumes") or ["application/json"]
    produces = spec.get("produces") or ["application/json"]
    shared_params = spec.get("parameters") or {}
    out: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": spec.get("info", {}),
        "servers": [{"url": _server_url(spec)}],
        "paths": {},
        "components": {
            "schemas": spec.get("definitions") or {},
            "parameters": {
                name: parameter(p) for name, p in shared_params.items() if p.get("in") not in ("body", "formData")
            },
            "responses": {name: _response(r, produces) for name, r in (spec.get("responses") or {}).items()},
        },
    }
    for key in ("tags", "externalDocs"):
        if key in spec:
            out[key] = spec[key]
    for path, item in (spec.get("paths") or {}).items():
        if not isinstance(item, dict):
            out["paths"][path] = item
            continue
        path_params = item.get("parameters") or []  # merged into each operation: body ones become its requestBody
        converted: dict[str, Any] = {k: v for k, v in item.items() if k.startswith("x-")}
        for method in METHODS:
            if isinstance(item.get(method), dict):
                converted[method] = _operation(item[method], path_params, shared_params, consumes, produces)
        out["paths"][path] = converted
    return out


def _rewrite(node: Any) -> Any:
    """A copy with local `$ref`s pointing into `components` and `x-nullable` as `nullable`."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                for old, new in _REF_PREFIXES.items():
                    if value.startswith(old):
                        value = new + value[len(old) :]
                        break
                out[key] = value
            elif key == "x-nullable":
                out["nullable"] = value
            else:
                out[key] = _rewrite(value)
        return out
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node


def _server_url(spec: dict[str, Any]) -> str:
    base_path = spec.get("basePath") or ""
    host = spec.get("host")
    if not host:
        return base_path or "/"
    schemes = spec.get("schemes") or ["https"]
    scheme = "https" if "https" in schemes else schemes[0]
    return f"{scheme}://{host}{base_path}"


def _resolve_all(params: list[Any], shared: dict[str, Any]) -> list[dict[str, Any]]:
    """Parameters with local `#/components/parameters/` refs resolved (body ones cannot stay refs)."""
    resolved = []
    for param in params:
        if isinstance(param, dict) and isinstance(param.get("$ref"), str):
            name = param["$ref"].removeprefix("#/components/parameters/")
            if name in shared:
                param = shared[name]
        if isinstance(param, dict):
            resolved.append(param)
    return resolved


def _schema_of(param: dict[str, Any]) -> dict[str, Any]:
    schema = {k: param[k] for k in _SCHEMA_KEYS if k in param}
    if isinstance(schema.get("items"), dict):
        schema["items"] = {k: v for k, v in schema["items"].items() if k != "collectionFormat"}
    return schema


def parameter(param: dict[str, Any]) -> dict[str, Any]:
    """A Swagger 2.0 path, query or header parameter in the 3.0 model (also for one met in another file)."""
    if "$ref" in param:
        return param
    kept = ("name", "in", "description", "required", "allowEmptyValue")
    out: dict[str, Any] = {k: param[k] for k in kept if k in param}
    out.update({k: v for k, v in param.items() if k.startswith("x-")})
    out["schema"] = _schema_of(param)
    if param.get("type") == "array":
        style, explode = _COLLECTION_STYLES.get(param.get("collectionFormat", "csv"), ("form", False))
        if param.get("in") in ("path", "header"):
            style = "simple"
        out["style"], out["explode"] = style, explode
    return out


def _operation(
    node: dict[str, Any],
    path_params: list[Any],
    shared: dict[str, Any],
    consumes: list[str],
    produces: list[str],
) -> dict[str, Any]:
    out = {k: v for k, v in node.items() if k not in ("parameters", "responses", "consumes", "produces", "schemes")}
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for param in [*_resolve_all(path_params, shared), *_resolve_all(node.get("parameters") or [], shared)]:
        # a parameter in another file stays a `$ref` (resolved by the loader): one entry per reference
        key = ("$ref", str(param["$ref"])) if "$ref" in param else (str(param.get("name")), str(param.get("in")))
        merged[key] = param
    params = list(merged.values())
    consumes = node.get("consumes") or consumes
    produces = node.get("produces") or produces
    out["parameters"] = [parameter(p) for p in params if p.get("in") not in ("body", "formData")]
    body = next((p for p in params if p.get("in") == "body"), None)
    form = [p for p in params if p.get("in") == "formData"]
    if body is not None:
        schema = body.get("schema", {})
        out["requestBody"] = {
            "content": {m: {"schema": schema} for m in consumes},
            "required": bool(body.get("required")),
        }
        if body.get("description"):
            out["requestBody"]["description"] = body["description"]
    elif form:
        multipart = "multipart/form-data" in consumes or any(p.get("type") == "file" for p in form)
        media_type = "multipart/form-data" if multipart else "application/x-www-form-urlencoded"
        properties = {}
        for p in form:
            properties[p["name"]] = _schema_of(p)
            if p.get("description"):
                properties[p["name"]]["description"] = p["description"]
        schema = {"type": "object", "properties": properties}
        required = [p["name"] for p in form if p.get("required")]
        if required:
            schema["required"] = required
        out["requestBody"] = {"content": {media_type: {"schema": schema}}, "required": bool(required)}
    out["responses"] = {code: _response(r, produces) for code, r in (node.get("responses") or {}).items()}
    return out


def _response(response: Any, produces: list[str]) -> Any:
    if not isinstance(response, dict) or "$ref" in response:
        return response
    out = {k: v for k, v in response.items() if k not in ("schema", "examples", "headers")}
    out.setdefault("description", "")
    if "schema" in response:
        out["content"] = {m: {"schema": response["schema"]} for m in produces}
    return out
