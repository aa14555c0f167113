"""A student uploads lecture slides, asks about them, and the cited slide opens beside the chat."""

import re

from playwright.async_api import expect

from tests.support.browser import SCREENSHOTS, screenshot, sign_up
from tests.support.formats import QUESTION, pptx_bytes
from tests.support.ingestion import WorkerProcess


async def test_a_question_about_slides_cites_and_shows_the_slide(page):
    await sign_up(page)
    deck = SCREENSHOTS / "cells-lecture.pptx"
    SCREENSHOTS.mkdir(exist_ok=True)
    deck.write_bytes(pptx_bytes(empty_after=1))
    worker = await WorkerProcess().start()
    try:
        await page.get_by_label("Semester", exact=True).fill("Y1S1")
        await page.get_by_label("Subject", exact=True).fill("Biology")
        await page.get_by_label("Book", exact=True).fill("Cell lectures")
        await page.locator('input[type="file"]').set_input_files(str(deck))
        await page.get_by_role("button", name="Upload").click()
        row = page.locator("#library-tree tr", has_text="cells-lecture.pptx")
        await expect(row.locator("td.status")).to_contain_text("ready", timeout=120_000)
    finally:
        await worker.stop()
        deck.unlink()

    await page.get_by_role("link", name="Chat", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/chat$"))
    await page.get_by_label("Semester").select_option("Y1S1")
    await page.get_by_label("Subject").select_option("Biology")
    question = page.get_by_label("Your question")
    await question.fill(QUESTION)
    await question.press("Enter")
    answer = page.locator("#chat-messages .message.assistant").nth(0)
    chip = answer.locator(".sources button.chip").first
    await expect(chip).to_have_text("[1] Cell lectures, slide 4", timeout=60_000)
    await expect(answer.locator(".bubble")).to_contain_text("Cell lectures, slide 4")
    await chip.click()
    frame = page.locator("#pdf-frame")
    await expect(frame).to_be_visible()
    assert re.fullmatch(r"/files/[0-9a-f-]{36}/view\?unit=4#unit-4", await frame.get_attribute("src"))
    await expect(page.locator("#pdf-page")).to_have_text("slide 4")
    cited = page.frame_locator("#pdf-frame").locator('section[aria-current="location"]')
    await expect(cited).to_contain_text("slide 4")
    await expect(cited).to_contain_text("chlorophyll")
    await expect(cited).to_be_in_viewport()
    await screenshot(page, "chat-slide-source")
