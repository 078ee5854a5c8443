"""Backend transports the gateway adapts to Streamable HTTP (stdio: see stdio_http.py)."""
