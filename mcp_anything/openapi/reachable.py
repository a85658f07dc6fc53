"""Every `$ref` an operation reaches must resolve: a spec with a broken reference fails its upstream.

Tools are built lazily from the parts they use (parameters, the chosen body media type,
2xx responses), so a broken `$ref` in an error response, a response header or an example
would otherwise go unnoticed. This walks the operation once, following each reference
(across documents, relative to the document holding it) and each referenced node once
per spec, and lists every reference that does not resolve.

Not walked: `links` and `callbacks` (the gateway does not use them), data values
(`example`, `default`, `enum`, `const`, an Example's `value`) and `x-` extensions,
whose contents are not OpenAPI objects.
"""

from __future__ import annotations

from typing import Any

from mcp_anything.openapi.documents import Documents, SpecError, UnresolvedReference
from mcp_anything.openapi.findings import LENIENT_REFERENCE, Note

_DATA = frozenset({"example", "default", "enum", "const", "value"})
_IGNORED = frozenset({"links", "callbacks"})
# Objects whose keys are names (of properties, media types, status codes...), not keywords.
_NAME_MAPS = frozenset(
    {"properties", "patternProperties", "dependentSchemas", "$defs", "definitions", "content", "responses"}
    | {"headers", "encoding"}
)


class ReachableReferences:
    """Checks the references of one spec's operations; remembers what it has walked."""

    def __init__(self, documents: Documents) -> None:
        self._documents = documents
        self._walked: set[str] = set()

    def check(self, node: Any, base: str) -> tuple[list[UnresolvedReference], list[Note]]:
        """The references under `node` (in the document at `base`) that do not resolve; notes on lenient ones."""
        broken: list[UnresolvedReference] = []
        notes: list[Note] = []
        pending: list[tuple[Any, str, bool]] = [(node, base, False)]  # (node, its base, keys are names)
        while pending:
            current, where, names = pending.pop()
            if isinstance(current, list):
                pending.extend((item, where, False) for item in current if isinstance(item, dict | list))
                continue
            if not isinstance(current, dict):
                continue
            if names:
                pending.extend((v, where, False) for v in current.values() if isinstance(v, dict | list))
                continue
            if "$ref" in current:
                self._follow(current["$ref"], where, pending, broken, notes)
            for key, value in current.items():
                if not isinstance(value, dict | list) or key in _DATA or key in _IGNORED or key == "$ref":
                    continue
                if not isinstance(key, str) or key.startswith("x-"):
                    continue
                if key == "examples":  # a schema's list of values, or a map of Example objects
                    if isinstance(value, dict):
                        pending.append((value, where, True))
                elif key == "discriminator":
                    self._mapping(value, where, pending, broken, notes)
                else:
                    pending.append((value, where, key in _NAME_MAPS))
        return broken, notes

    def _follow(
        self,
        ref: Any,
        where: str,
        pending: list[tuple[Any, str, bool]],
        broken: list[UnresolvedReference],
        notes: list[Note],
    ) -> None:
        try:
            target, document, key = self._documents.resolve(ref, where)
        except UnresolvedReference as exc:
            broken.append(exc)
            return
        except SpecError as exc:  # the referenced document could not be fetched or parsed
            broken.append(UnresolvedReference(str(ref), where, str(exc)))
            return
        if key in self._walked:
            return
        self._walked.add(key)
        if str(ref).startswith("#") and document != where:
            notes.append(
                Note(
                    LENIENT_REFERENCE,
                    f"$ref {ref!r} in {_name(where)} is not in that file; resolved in the root document instead",
                )
            )
        pending.append((target, document, False))

    def _mapping(
        self,
        discriminator: Any,
        where: str,
        pending: list[tuple[Any, str, bool]],
        broken: list[UnresolvedReference],
        notes: list[Note],
    ) -> None:
        mapping = discriminator.get("mapping") if isinstance(discriminator, dict) else None
        for target in mapping.values() if isinstance(mapping, dict) else ():
            if isinstance(target, str) and ("/" in target or "#" in target):
                self._follow(target, where, pending, broken, notes)


def _name(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]
