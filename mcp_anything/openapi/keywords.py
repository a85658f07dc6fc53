"""The JSON Schema keywords whose values are schemas themselves, by the shape that holds them.

Every walk over a schema (conversion, compaction) descends through the same keywords.
`items` is left to each walk: OpenAPI 3.0 and 2020-12 give it different shapes.
"""

from __future__ import annotations

SUBSCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas")  # name -> schema
SUBSCHEMA_VALUES = (  # one schema
    "additionalProperties",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
    "unevaluatedItems",
)
SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")  # a list of schemas
