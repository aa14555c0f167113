"""A student adds books with per-file progress, finds them, opens one, and deletes it — in Chromium."""

import re

from playwright.async_api import expect

from tests.support.browser import screenshot, sign_up
from tests.support.corpus import BAD, BOOKS
from tests.support.ingestion import WorkerProcess


async def test_ingestion_progress_shows_live_then_ready(page):
    await sign_up(page)
    worker = await WorkerProcess().start()
    try:
        await page.get_by_label("Semester", exact=True).fill("Y3S2")
        await page.get_by_label("Subject", exact=True).fill("NLP")
        await page.get_by_label("Book", exact=True).fill("NLP for the working programmer")
        await page.locator('input[type="file"]').set_input_files(str(BOOKS / "nlp_working_programmer.pdf"))
        await page.get_by_role("button", name="Upload").click()
        row = page.locator("#library-tree tr", has_text="nlp_working_programmer.pdf")
        await expect(row.locator("td.status")).to_contain_text(re.compile("queued|reading|indexing|ready"))
        # No reload: the status cell polls itself until the book is ready.
        await expect(row.locator("td.status")).to_contain_text(
            re.compile(r"ready\s+— 78 pages, \d+ passages"), timeout=120_000
        )
        await screenshot(page, "library-ingested")
    finally:
        await worker.stop()


async def test_upload_find_open_and_delete_a_book(page):
    await sign_up(page)
    await page.get_by_label("Semester", exact=True).fill("Y1S1")
    await page.get_by_label("Subject", exact=True).fill("Logic")
    await page.get_by_label("Book", exact=True).fill("forall x")
    await page.locator('input[type="file"]').set_input_files(
        [str(BOOKS / "forallx_magnus.pdf"), str(BAD / "png_renamed.pdf")]
    )
    await page.get_by_role("button", name="Upload").click()

    progress = page.locator("#upload-progress")
    await expect(progress.locator("li.ok")).to_contain_text("forallx_magnus.pdf")
    await expect(progress.locator("li.ok progress")).to_have_attribute("value", "100")
    await expect(progress.locator("li.bad")).to_contain_text("This is not a PDF file")

    tree = page.locator("#library-tree")
    await expect(tree.get_by_role("link", name="forallx_magnus.pdf")).to_be_visible()
    await expect(tree).to_contain_text("forall x")
    await expect(tree).not_to_contain_text("png_renamed.pdf")
    await screenshot(page, "library-with-a-book")

    # Search as you type.
    search = page.get_by_role("searchbox", name="Search your library")
    await search.fill("no such thing")
    await expect(tree).to_contain_text("Nothing matches")
    await search.fill("forall")
    await expect(tree.get_by_role("link", name="forallx_magnus.pdf")).to_be_visible()

    # The link opens the PDF itself, inline, and #page=N is left to the browser's viewer.
    href = await tree.get_by_role("link", name="forallx_magnus.pdf").get_attribute("href")
    assert re.fullmatch(r"/files/[0-9a-f-]{36}/content", href)
    opened = await page.request.get(href)
    assert opened.status == 200
    assert opened.headers["content-type"] == "application/pdf"
    assert (await opened.body())[:5] == b"%PDF-"

    # Delete, after confirming, in another tab.
    other = await page.context.new_page()
    await other.goto(page.url)
    other.once("dialog", lambda dialog: dialog.accept())
    await other.locator("#library-tree").get_by_role("button", name="Delete forallx_magnus.pdf").click()
    await expect(other.get_by_text("Your library is empty")).to_be_visible()
    await other.close()
    gone = await page.request.get(href)
    assert gone.status == 404

    # This tab still lists it. Its status cell, polling, hears the file is gone: the banner above the
    # page says so, the cell says "deleted" and stops asking; the tree stays as it was, not the site's
    # error page swapped into it. Its Delete button gets the same answer.
    row = tree.locator("tr", has_text="forallx_magnus.pdf")
    await expect(page.locator("#htmx-error [role=alert]")).to_have_text("No such file in your library.")
    await expect(row.locator("td.status")).to_have_text("deleted")
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/status" in request.url else None)
    await page.wait_for_timeout(2500)
    assert polls == []
    await expect(page.locator("header.topbar")).to_have_count(1)
    page.once("dialog", lambda dialog: dialog.accept())
    await row.get_by_role("button", name="Delete forallx_magnus.pdf").click()
    await expect(page.locator("#htmx-error [role=alert]")).to_have_text("No such file in your library.")
    await expect(tree.get_by_role("link", name="forallx_magnus.pdf")).to_be_visible()
    await screenshot(page, "library-delete-already-gone")
    await page.reload()
    await expect(page.get_by_text("Your library is empty")).to_be_visible()
