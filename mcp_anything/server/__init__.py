"""The MCP side: the Streamable HTTP transport, sessions, a group's handler and `tools/call` results."""

from mcp_anything.server.group import PRM_PREFIX, Caller, Group
from mcp_anything.server.handler import GroupHandler
from mcp_anything.server.results import error_result
from mcp_anything.server.rpc import HttpError, RequestContext, RpcError, send_json
from mcp_anything.server.sessions import SessionStore
from mcp_anything.server.streams import RELEASE_SCOPE_KEY
from mcp_anything.server.transport import McpTransport

__all__ = [
    "PRM_PREFIX",
    "RELEASE_SCOPE_KEY",
    "Caller",
    "Group",
    "GroupHandler",
    "HttpError",
    "McpTransport",
    "RequestContext",
    "RpcError",
    "SessionStore",
    "error_result",
    "send_json",
]
