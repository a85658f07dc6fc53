"""Reading OpenAPI documents and resolving `$ref`s across them.

Every document is identified by an absolute URI (`file:///...` or `https://...`) and parsed
once. A `$ref` is resolved against the URI of the document that contains it, so
multi-file specs work as written (`$ref: ../common/pet.yaml#/Pet`). Fragments are JSON
pointers (RFC 6901: `~1` is `/`, `~0` is `~`, after percent-decoding).

Trust boundaries: a document fetched over HTTP may only reference other http(s)
documents, never local files; the configured `openapi.headers` (often credentials)
are only sent to the origin of the configured source URL.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import httpx2
import yaml

from mcp_anything.http_client import BodyTooLarge, HttpPolicy, SyncHttpClient, origin

FETCH_TIMEOUT = 10.0
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
# Spec URLs often redirect (a moved file, http to https). The configured headers follow only within
# their origin: a hop elsewhere is sent without them (see http_client.policy).
_FETCH_POLICY = HttpPolicy(timeout=FETCH_TIMEOUT, max_body=MAX_DOCUMENT_BYTES, max_redirects=5)
MAX_EXPANDED_NODES = 20_000_000  # a "billion laughs" YAML stays small on disk and explodes when walked


class SpecError(Exception):
    """A problem with the spec itself; the message is shown to the user after the config key."""


class FetchError(SpecError):
    """A document URL could not be fetched (network, HTTP status): it may work later."""


def source_uri(source: str, resolve_path: Any) -> str:
    """The absolute URI of a configured `openapi.source` (an http(s) URL or a path from the config dir)."""
    if source.startswith(("http://", "https://")):
        return source
    return Path(resolve_path(source)).as_uri()


class Documents:
    """The parsed documents of one spec, keyed by URI, and `$ref` resolution between them."""

    def __init__(self, root_uri: str, headers: Mapping[str, str] | None = None) -> None:
        self.root_uri = root_uri
        self._headers = dict(headers or {})
        self._origin = origin(root_uri)
        self._cache: dict[str, Any] = {}
        self._resolved: dict[tuple[str, str], tuple[Any, str, str]] = {}

    def set(self, uri: str, document: Any) -> None:
        """Replace a parsed document (after overlays or Swagger 2.0 conversion)."""
        self._cache[uri] = document
        self._resolved.clear()

    def load(self, uri: str) -> Any:
        document = self._cache.get(uri)
        if document is None:
            document = self._cache[uri] = parse(self._read(uri), uri)
        return document

    def _read(self, uri: str) -> bytes:
        scheme = urlsplit(uri).scheme
        if scheme == "file":
            path = Path(unquote(urlsplit(uri).path))
            try:
                return path.read_bytes()
            except FileNotFoundError:
                raise SpecError(f"file not found: {path}") from None
            except OSError as exc:
                raise SpecError(f"cannot read {path}: {exc.strerror}") from None
        if scheme in ("http", "https"):
            return self._fetch(uri)
        raise SpecError(f"unsupported reference scheme {scheme!r} in {uri}")

    def _fetch(self, uri: str) -> bytes:
        headers = {"Accept": "application/json, application/yaml;q=0.9, */*;q=0.5"}
        credentials = self._headers if origin(uri) == self._origin else {}
        client = SyncHttpClient(_FETCH_POLICY)
        try:
            response = client.request("GET", uri, headers=headers, credentials=credentials)
        except BodyTooLarge:
            raise SpecError(f"{uri} is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB") from None
        except TimeoutError:
            raise FetchError(f"fetching {uri} failed: no answer within {FETCH_TIMEOUT:g}s") from None
        except httpx2.HTTPError as exc:
            raise FetchError(f"fetching {uri} failed: {type(exc).__name__}: {exc}") from None
        finally:
            client.close()
        if not 200 <= response.status < 300:
            raise FetchError(f"fetching {uri} failed: HTTP {response.status}")
        return response.body

    def resolve(self, ref: Any, base_uri: str) -> tuple[Any, str, str]:
        """Resolve `ref` found in the document at `base_uri`: (target node, its document URI, canonical key).

        Raises UnresolvedReference naming the reference and the document it appears in.
        """
        cache_key = (ref, base_uri) if isinstance(ref, str) else None
        hit = self._resolved.get(cache_key) if cache_key else None
        if hit is None:
            hit = self._resolve(ref, base_uri)
            if cache_key:
                self._resolved[cache_key] = hit
        return hit

    def _resolve(self, ref: Any, base_uri: str) -> tuple[Any, str, str]:
        if not isinstance(ref, str):
            raise UnresolvedReference(repr(ref), base_uri, f"$ref must be a string, got {type(ref).__name__}")
        target = urljoin(base_uri, ref)
        doc_uri, fragment = urldefrag(target)
        if urlsplit(doc_uri).scheme == "file" and urlsplit(base_uri).scheme != "file":
            raise UnresolvedReference(ref, base_uri, "remote specs may only reference URLs, not local files")
        try:
            document = self.load(doc_uri)
        except FetchError as exc:
            raise FetchError(f"$ref {ref!r} in {short(base_uri)}: {exc}") from None
        except SpecError as exc:
            raise UnresolvedReference(ref, base_uri, str(exc)) from None
        try:
            return pointer(document, fragment), doc_uri, f"{doc_uri}#{fragment}"
        except SpecError as exc:
            if ref.startswith("#/") and doc_uri != self.root_uri:
                # Split specs written for bundlers that read a local `#/components/...` in a referenced file as
                # pointing into the root document. The loader reports it (LENIENT_REFERENCE).
                with contextlib.suppress(SpecError):
                    return pointer(self.load(self.root_uri), fragment), self.root_uri, f"{self.root_uri}#{fragment}"
            raise UnresolvedReference(ref, base_uri, str(exc)) from None

    def follow(self, node: Any, base_uri: str) -> tuple[Any, str]:
        """Follow a chain of `$ref`s on a non-schema object (path item, operation, parameter...): (node, its base)."""
        seen = set()
        while isinstance(node, dict) and "$ref" in node:
            node, base_uri, key = self.resolve(node["$ref"], base_uri)
            if key in seen:
                raise SpecError(f"$ref cycle at {short(key)}")
            seen.add(key)
        return node, base_uri


class UnresolvedReference(SpecError):
    """A `$ref` that does not resolve; the message names it and the document it appears in."""

    def __init__(self, ref: str, base_uri: str, reason: str) -> None:
        super().__init__(f"$ref {ref!r} in {short(base_uri)} does not resolve: {reason}")
        self.ref = ref
        self.document = base_uri


def parse(data: bytes, uri: str) -> Any:
    """JSON or YAML, whatever the file is called."""
    text = data.decode("utf-8-sig", errors="replace")
    if text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass  # YAML flow style also starts with `{`
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise SpecError(f"{short(uri)} is neither valid JSON nor YAML: {exc}") from None
    if _expanded_size(document) > MAX_EXPANDED_NODES:
        raise SpecError(f"{short(uri)}: YAML aliases expand to more than {MAX_EXPANDED_NODES} nodes")
    return document


def _expanded_size(document: Any) -> int:
    """How many nodes the document has once YAML aliases are expanded (each shared node counted once per use)."""
    sizes: dict[int, int] = {}
    pending: list[tuple[Any, bool]] = [(document, False)]
    while pending:
        node, children_done = pending.pop()
        if not isinstance(node, dict | list) or id(node) in sizes:
            continue
        children = [c for c in (node.values() if isinstance(node, dict) else node) if isinstance(c, dict | list)]
        if children_done:
            sizes[id(node)] = 1 + len(node) + sum(sizes[id(c)] for c in children)
        else:
            pending.append((node, True))
            pending.extend((c, False) for c in children if id(c) not in sizes)
    return sizes.get(id(document), 1)


class _Loader(yaml.SafeLoader):
    """Safe YAML read the way OpenAPI means it (YAML 1.2 JSON schema), not YAML 1.1.

    `yes`/`no`/`on`/`off` stay strings (a property named `on`, an enum of `[yes, no]`),
    timestamps stay strings (`example: 2020-01-01`), and mapping keys are kept as
    written (`200:` is the response code "200").
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        mapping = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
            else:
                key = self.construct_object(key_node, deep=deep)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, _BOOL if tag == "tag:yaml.org,2002:bool" else regexp)
        for tag, regexp in resolvers
        if tag != "tag:yaml.org,2002:timestamp"
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def pointer(document: Any, fragment: str) -> Any:
    """Follow a JSON pointer fragment (`/components/schemas/a~1b`) into `document`."""
    if not fragment:
        return document
    if not fragment.startswith("/"):
        raise SpecError(f"fragment {fragment!r} is not a JSON pointer")
    node = document
    for raw in fragment[1:].split("/"):
        token = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise SpecError(f"no {token!r} at #{fragment}")
    return node


def short(uri: str) -> str:
    """A URI as a user recognises it: a file's path, else the URL."""
    return unquote(urlsplit(uri).path) if uri.startswith("file:") else uri
