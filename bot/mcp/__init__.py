"""The MCP edge (issue 18): tasks as tools for other AI apps. Imported only when enabled."""
