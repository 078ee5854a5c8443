"""Backend transports the gateway adapts to Streamable HTTP (stdio: see bridge.py)."""
