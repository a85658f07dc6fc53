import sys

from mcp_anything.cli import main

sys.exit(main())
