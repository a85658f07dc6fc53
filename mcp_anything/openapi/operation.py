"""One OpenAPI operation as the loader finds it, and the findings recorded while its tool is built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcp_anything.openapi.findings import Note

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(slots=True)
class Operation:
    method: str  # upper case
    path: str
    node: dict[str, Any]  # the operation object, its own `$ref`s followed
    base: str  # URI of the document holding the operation object
    shared_parameters: list[tuple[Any, str]]  # the path item's parameters, each with its document's URI
    notes: list[Note] = field(default_factory=list)  # what the tool approximates (see `findings`)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def title(self) -> str:
        """The label findings carry: `GET /things (listThings)`."""
        operation_id = self.node.get("operationId")
        return f"{self.label} ({operation_id})" if operation_id else self.label

    def note(self, kind: str, message: str, changes_calls: bool = False) -> None:
        self.notes.append(Note(kind, message, changes_calls))
