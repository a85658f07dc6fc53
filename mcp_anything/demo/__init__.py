"""The bundled demo: a small in-memory bookshop API, served by the gateway's own process (see `bookshop`)."""

from mcp_anything.demo.bookshop import MOUNT, demo_api, demo_config

__all__ = ["MOUNT", "demo_api", "demo_config"]
