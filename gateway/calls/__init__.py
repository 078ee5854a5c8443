"""Checks a tool call must pass before it is forwarded: the tool exists, its arguments fit its schema."""
