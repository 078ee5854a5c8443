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
