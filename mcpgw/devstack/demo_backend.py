"""A demo MCP backend built with the official SDK (both protocol eras on one endpoint)."""

from __future__ import annotations

import argparse
import datetime
import logging

from mcp.server.mcpserver import MCPServer


def build_server(name: str = "demo") -> MCPServer:
    """A small server with harmless tools, one 'dangerous' tool for policy demos."""
    mcp = MCPServer(name)

    @mcp.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    @mcp.tool()
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    @mcp.tool()
    def utc_now() -> str:
        """The current UTC time in ISO 8601."""
        return datetime.datetime.now(datetime.UTC).isoformat()

    @mcp.tool()
    def delete_records(table: str) -> str:
        """Pretend to delete every row of a table. The dev policy denies it to agents (bob, temp: rule
        "Agents may not delete records") and allows it to admins (alice)."""
        return f"deleted all rows of {table} (demo)"

    return mcp


def _drop_color_message(record: logging.LogRecord) -> bool:
    record.__dict__.pop("color_message", None)
    return True


def main() -> None:
    """Serve the demo backend on HOST:PORT/mcp."""
    parser = argparse.ArgumentParser(description="mcpgw demo MCP backend")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--name", default="demo")
    args = parser.parse_args()
    import uvicorn

    from shared.logging import setup_logging

    setup_logging("demo-backend", "INFO", "json")
    for handler in logging.getLogger().handlers:  # uvicorn's ANSI-coloured copy of each message
        handler.addFilter(_drop_color_message)
    app = build_server(args.name).streamable_http_app(streamable_http_path="/mcp", host=args.host)
    # log_config=None: uvicorn's loggers propagate to the root JSON handler like the services' do.
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
