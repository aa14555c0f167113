"""A real server process and Debian's headless Chromium, driven by Playwright."""

import asyncio
import os
import shutil
import sys

import httpx
import pytest
from playwright.async_api import async_playwright

from tests.support.paths import ROOT
from tests.support.ports import free_port

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Chromium is not installed: `make test` installs it (apt-get install chromium).")
    return path


@pytest.fixture(scope="session")
async def live_server(services):
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=dict(os.environ),
        cwd=ROOT,
    )
    base_url = f"http://localhost:{port}"
    async with httpx.AsyncClient() as http:
        for _ in range(120):
            try:
                if (await http.get(f"{base_url}/api/health")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.25)
        else:
            process.kill()
            raise RuntimeError("the test server did not start")
    yield base_url
    process.terminate()
    await process.wait()


@pytest.fixture(scope="session")
async def browser():
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser, live_server):
    context = await browser.new_context(base_url=live_server, viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(15_000)
    yield page
    await context.close()
