"""GC tuning used by the serve commands."""

import gc

from aiohttp import web

from shared.runtime import tune_gc


async def test_tune_gc_raises_gen0_threshold_and_freezes_at_startup():
    before = gc.get_threshold()
    try:
        app = web.Application()
        tune_gc(app)
        assert gc.get_threshold()[0] == 20_000
        app.freeze()
        await app.startup()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_event_loop_choice_follows_the_setting_and_what_is_installed(monkeypatch):
    import asyncio

    from shared import runtime

    loop = runtime.new_event_loop("asyncio")
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()
    monkeypatch.setattr(runtime, "uvloop_installed", lambda: False)
    loop = runtime.new_event_loop("auto")  # auto without uvloop: the standard loop
    try:
        assert isinstance(loop, asyncio.BaseEventLoop)
    finally:
        loop.close()
    assert runtime.event_loop_problem("auto") is None
    assert "not installed" in (runtime.event_loop_problem("uvloop") or "")


def test_event_loop_uvloop_when_installed():
    import pytest

    from shared import runtime

    uvloop = pytest.importorskip("uvloop")
    for choice in ("auto", "uvloop"):
        loop = runtime.new_event_loop(choice)
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
