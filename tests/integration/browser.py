"""Headless Chromium driven over the DevTools protocol (aiohttp websockets): a page that keeps
an event stream open never "finishes loading", so --dump-dom cannot be used on it."""

from __future__ import annotations

import asyncio
import base64
import itertools
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

from streams.localkafka import free_port
from tests.unit.slo.test_report_browser import FLAGS


class PageError(RuntimeError):
    """The page threw while evaluating an expression (often: it is still loading)."""


class Browser:
    """One headless Chromium showing ``url``; :meth:`evaluate` and :meth:`screenshot` talk to
    its page. Stopped by its pid in :meth:`close`."""

    def __init__(self, executable: str, profile: Path, url: str, size: str = "1600,1000") -> None:
        self.port = free_port()
        self.url = url
        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={self.port}",
             f"--window-size={size}", "--hide-scrollbars", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._ids = itertools.count(1)

    async def _page_socket(self, session: aiohttp.ClientSession) -> str:
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, f"chromium exited with {self.proc.returncode}"
            try:
                async with session.get(f"http://127.0.0.1:{self.port}/json/list") as response:
                    for target in await response.json():
                        if target.get("type") == "page" and target["url"].startswith(self.url):
                            return target["webSocketDebuggerUrl"]
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, "chromium's DevTools endpoint did not come up"
            await asyncio.sleep(0.3)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(await self._page_socket(session),
                                          max_msg_size=64 * 1024 * 1024) as ws:
                call_id = next(self._ids)
                await ws.send_json({"id": call_id, "method": method, "params": params})
                while True:
                    message = await asyncio.wait_for(ws.receive_json(), 60)
                    if message.get("id") == call_id:
                        assert "error" not in message, message
                        return message["result"]

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page; :class:`PageError` when it threw (a page
        still loading has no document yet: callers that poll retry on it)."""
        result = asyncio.run(self.call("Runtime.evaluate", expression=expression,
                                       returnByValue=True))
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise PageError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = asyncio.run(self.call("Page.captureScreenshot", format="png"))["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
