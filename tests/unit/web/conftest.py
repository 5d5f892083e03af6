"""A Faust app with only the wallboard's routes, served by aiohttp's test server on loopback
(no Kafka: the view is fed directly)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Callable

import faust
import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.web import register_web


class Served:
    """The wallboard of one app, its view, and a client running on its own event loop."""

    def __init__(self, settings, engine_counts: Counter | None = None) -> None:
        self.app = faust.App(settings.worker.app_id, broker="kafka://127.0.0.1:9",
                             web_bind="127.0.0.1", web_port=6066, autodiscover=False)
        self.parts = register_web(self.app, settings, {"counts": engine_counts or Counter()})
        self.view = self.parts["view"]
        self.app.web.init_server()
        self.loop = asyncio.new_event_loop()

        async def start() -> TestClient:
            client = TestClient(TestServer(self.app.web.web_app))
            await client.start_server()
            return client

        self.client = self.run(start())

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def get(self, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        async def fetch():
            response = await self.client.get(path, allow_redirects=False, **kwargs)
            body = (await response.json() if response.content_type == "application/json"
                    else await response.text())
            return response.status, body, response
        return self.run(fetch())

    def close(self) -> None:
        self.run(self.client.close())
        self.loop.close()


@pytest.fixture
def serve(make_settings) -> Callable[..., Served]:
    made: list[Served] = []

    def start(engine_counts: Counter | None = None, **sections: Any) -> Served:
        served = Served(make_settings(**sections), engine_counts)
        made.append(served)
        return served

    yield start
    for served in made:
        served.close()
