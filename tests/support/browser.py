"""For the browser journeys: screenshots into test-results/, and a fresh student signed up in a page."""

import re

from playwright.async_api import expect

from tests.support.accounts import PASSWORD, new_email
from tests.support.ingestion import WorkerProcess
from tests.support.paths import ROOT

SCREENSHOTS = ROOT / "test-results"


async def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def sign_up(page) -> None:
    await page.goto("/signup")
    await page.get_by_label("Name", exact=True).fill("Emmy Noether")
    await page.get_by_label("Email", exact=True).fill(new_email())
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page).to_have_url(re.compile(r"/library$"))


async def upload_until_ready(page, path, *, semester: str, subject: str, book: str) -> None:
    """Upload `path` from the library page into semester / subject / book, and wait (a worker running
    meanwhile) until its row says ready."""
    worker = await WorkerProcess().start()
    try:
        await page.get_by_label("Semester", exact=True).fill(semester)
        await page.get_by_label("Subject", exact=True).fill(subject)
        await page.get_by_label("Book", exact=True).fill(book)
        await page.locator('input[type="file"]').set_input_files(str(path))
        await page.get_by_role("button", name="Upload").click()
        row = page.locator("#library-tree tr", has_text=path.name)
        await expect(row.locator("td.status")).to_contain_text("ready", timeout=240_000)
    finally:
        await worker.stop()
