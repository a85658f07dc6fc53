"""The one outbound HTTP stack: upstreams, identity providers, token endpoints, script `fetch` and specs."""

from mcp_anything.http_client.aio import AsyncHttpClient
from mcp_anything.http_client.body import BodyTooLarge, read_capped
from mcp_anything.http_client.policy import HttpPolicy, HttpResponse, origin
from mcp_anything.http_client.sync import SyncHttpClient

__all__ = ["AsyncHttpClient", "BodyTooLarge", "HttpPolicy", "HttpResponse", "SyncHttpClient", "origin", "read_capped"]
