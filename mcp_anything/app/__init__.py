"""The ASGI application: a gateway built from a config, served, and rebuilt on reload."""

from mcp_anything.app.asgi import GatewayApp, create_app
from mcp_anything.app.build import Gateway, build_gateway, load_tools

__all__ = ["Gateway", "GatewayApp", "build_gateway", "create_app", "load_tools"]
