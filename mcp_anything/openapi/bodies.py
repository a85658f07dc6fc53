"""Request bodies: choosing a media type and encoding a body value for it."""

from __future__ import annotations

from typing import Any

import orjson


def is_json(media_type: str) -> bool:
    """`application/json`, `application/problem+json`, `application/vnd.x+json; charset=utf-8`..."""
    essence = media_type.split(";", 1)[0].strip().lower()
    return essence == "application/json" or essence.endswith("+json")


def choose_media_type(content: dict[str, Any]) -> str | None:
    """The media type a tool sends: JSON when offered, else the first supported one."""
    for media_type in content:
        if is_json(media_type):
            return media_type
    return None


class JsonBody:
    __slots__ = ("content_type",)

    def __init__(self, media_type: str) -> None:
        self.content_type = media_type

    def encode(self, value: Any) -> bytes:
        return orjson.dumps(value)
