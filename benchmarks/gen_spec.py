"""Generate a large OpenAPI 3.0 spec for benchmarks: N operations over S inter-referencing schemas.

Every schema has scalar properties plus references to three other schemas (one as an
array), chosen with a fixed seed, so the reference graph is full of cycles, the way
big real-world specs are.

    python -m benchmarks.gen_spec --operations 2000 --schemas 200 > /tmp/big.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from typing import Any


def generate(operations: int = 2000, schemas: int = 200, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)

    def ref(i: int) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/Model{i}"}

    components = {}
    for i in range(schemas):
        a, b, c = (rng.randrange(schemas) for _ in range(3))
        components[f"Model{i}"] = {
            "type": "object",
            "required": ["id", "name"],
            "properties": {
                "id": {"type": "integer", "format": "int64", "readOnly": True},
                "name": {"type": "string", "maxLength": 200},
                "kind": {"type": "string", "enum": ["a", "b", "c"]},
                "score": {"type": "number", "minimum": 0, "nullable": True},
                "created": {"type": "string", "format": "date-time"},
                "parent": ref(a),
                "related": {"type": "array", "items": ref(b)},
                "extra": {"allOf": [ref(c)], "description": "More."},
            },
        }
    paths: dict[str, Any] = {}
    resources = operations // 5
    for r in range(resources):
        model = ref(r % schemas)
        listing = {"type": "array", "items": ref((r * 7) % schemas)}
        query = [
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            {"name": "tags", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
        ]
        item_id = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]

        def ok(schema: dict[str, Any]) -> dict[str, Any]:
            return {"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}}

        body = {"required": True, "content": {"application/json": {"schema": model}}}
        paths[f"/resource{r}"] = {
            "get": {"operationId": f"listResource{r}", "parameters": query, "responses": ok(listing)},
            "post": {"operationId": f"createResource{r}", "requestBody": body, "responses": ok(model)},
        }
        paths[f"/resource{r}/{{id}}"] = {
            "parameters": item_id,
            "get": {"operationId": f"getResource{r}", "responses": ok(model)},
            "put": {"operationId": f"replaceResource{r}", "requestBody": body, "responses": ok(model)},
            "delete": {"operationId": f"deleteResource{r}", "responses": {"204": {"description": "gone"}}},
        }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Generated", "version": "1"},
        "servers": [{"url": "http://127.0.0.1:9000"}],
        "paths": paths,
        "components": {"schemas": components},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operations", type=int, default=2000)
    parser.add_argument("--schemas", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    json.dump(generate(args.operations, args.schemas, args.seed), sys.stdout)


if __name__ == "__main__":
    main()
