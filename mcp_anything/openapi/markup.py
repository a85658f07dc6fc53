"""Descriptions as an agent reads them: the HTML in a spec's prose turned into Markdown, its Markdown kept.

Specs mix both (`<b>Required scope:</b> <code>tasks:read</code>`, `<a href=...>`); agents read
Markdown. Only real HTML elements are converted: anything else that looks like a tag
(`List<String>`, `<task_gid>`) is text and stays as written.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "center",
        "details",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "header",
        "hr",
        "html",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "tfoot",
        "thead",
        "title",
        "ul",
    ]
)
_INLINE = frozenset(
    [
        "abbr",
        "b",
        "big",
        "cite",
        "code",
        "del",
        "dfn",
        "em",
        "font",
        "i",
        "img",
        "ins",
        "kbd",
        "label",
        "mark",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "time",
        "tt",
        "u",
        "var",
        "wbr",
        "br",
        "li",
        "a",
        "tr",
        "td",
        "th",
    ]
)
_SKIPPED = frozenset({"script", "style", "template"})  # their content is not prose
_MARKS = {"b": "**", "strong": "**", "i": "*", "em": "*", "code": "`", "tt": "`", "kbd": "`"}
_ELEMENTS = _BLOCK | _INLINE | _SKIPPED
_BLANK_LINES = re.compile(r"[ \t]*\n[ \t]*\n(?:[ \t]*\n)+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def markdown(text: str) -> str:
    """`text` with its HTML elements turned into Markdown (or dropped), entities decoded, blank runs collapsed."""
    if "<" not in text and "&" not in text:
        return text.strip()
    converter = _Converter()
    converter.feed(text)
    converter.close()
    out = _TRAILING_SPACE.sub("\n", "".join(converter.out))
    return _BLANK_LINES.sub("\n\n", out).strip()


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._links: list[tuple[int, str]] = []  # (where the link's text starts in `out`, its href)
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ELEMENTS:
            self.handle_data(self.get_starttag_text() or "")
        elif tag in _SKIPPED:
            self._skipping += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "tr":
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.out.append(" | " if self.out and not self.out[-1].endswith("\n") else "")
        elif tag == "a":
            self._links.append((len(self.out), dict(attrs).get("href") or ""))
        elif tag == "img":
            self.out.append(dict(attrs).get("alt") or "")
        elif tag in _MARKS:
            self.out.append(_MARKS[tag])
        elif tag in _BLOCK:
            self.out.append("\n\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _ELEMENTS and tag not in _SKIPPED:
            self.handle_starttag(tag, attrs)
        elif tag not in _ELEMENTS:
            self.handle_data(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if tag not in _ELEMENTS:
            self.handle_data(f"</{tag}>")
        elif tag in _SKIPPED:
            self._skipping = max(self._skipping - 1, 0)
        elif tag == "a" and self._links:
            start, href = self._links.pop()
            label = "".join(self.out[start:]).strip()
            if href and label and href != label and not href.startswith(("javascript:", "data:")):
                self.out[start:] = [f"[{label}]({href})"]
        elif tag in _MARKS:
            self.out.append(_MARKS[tag])
        elif tag in _BLOCK:
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.out.append(data)
