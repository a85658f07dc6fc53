"""Per-user tools: which tools a caller may see and call (see `grant` and `authorizer`)."""

from mcp_anything.authz.authorizer import AllowAll, Authorizer, create_authorizer
from mcp_anything.authz.grant import Forbidden, Grant

__all__ = ["AllowAll", "Authorizer", "Forbidden", "Grant", "create_authorizer"]
