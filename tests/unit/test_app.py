"""The Faust app as built from the settings (no broker: the consumer is built, not started)."""

from __future__ import annotations

import asyncio

from streams.app import GC_YOUNG_THRESHOLD, create_app, tune_gc
from streams.settings import Settings


def test_the_agents_consumer_waits_at_most_fetch_max_wait_ms_per_fetch(tmp_path):
    # Faust builds its consumer with fetch_max_wait_ms=1500 whatever it is told; with that,
    # column batches reached the engine agent 1-1.8 s after stage 1 produced them.
    settings = Settings.from_mapping({"worker": {"fetch_max_wait_ms": 50,
                                                 "data_dir": str(tmp_path)}}, env={})
    app = create_app(settings)

    async def fetch_max_wait_ms() -> int:
        thread = app.consumer._new_consumer_thread()
        consumer = thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    assert asyncio.run(fetch_max_wait_ms()) == 50
    assert Settings.from_mapping({}, env={}).worker.fetch_max_wait_ms == 100


def test_tune_gc_freezes_what_exists_and_collects_young_objects_less_often():
    import gc

    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 20, 100)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
