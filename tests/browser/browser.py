"""Playwright driving Debian's chromium (headless, loopback only), with page screenshots."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".artifacts" / "console"
CHROMIUM = os.environ.get("MCPGW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("MCPGW_REQUIRE_NODE_TOOLS") == "1"


def require_browser() -> None:
    """Skip (or fail under `make test`) without Playwright or chromium."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        reason = "playwright is not installed (pip install -e '.[dev]')"
    else:
        if Path(CHROMIUM).exists():
            return
        reason = f"chromium not found at {CHROMIUM} (make test installs it with apt-get)"
    if REQUIRED:
        pytest.fail(reason)
    pytest.skip(reason)


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[object]:
    """A headless chromium; every context it makes may reach 127.0.0.1 only."""
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            await b.close()


async def new_page(b):  # type: ignore[no-untyped-def]
    """A fresh context (its own cookies) and page; requests off loopback are aborted."""
    context = await b.new_context()

    async def only_loopback(route):  # type: ignore[no-untyped-def]
        host = route.request.url.split("/")[2].split(":")[0]
        await (route.continue_() if host == "127.0.0.1" else route.abort())

    await context.route("**/*", only_loopback)
    return await context.new_page()


async def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Save a full-page screenshot under .artifacts/console/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
