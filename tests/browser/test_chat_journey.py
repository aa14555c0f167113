"""A student asks an ingested book questions, opens a cited page, follows up and finds the chat again."""

import re

from playwright.async_api import expect

from tests.support.browser import screenshot, sign_up
from tests.support.corpus import BOOKS
from tests.support.ingestion import WorkerProcess

QUESTION = "How do you count the words in a text?"


async def _upload_and_wait_until_ready(page) -> None:
    worker = await WorkerProcess().start()
    try:
        await page.get_by_label("Semester", exact=True).fill("Y3S2")
        await page.get_by_label("Subject", exact=True).fill("NLP")
        await page.get_by_label("Book", exact=True).fill("NLP for the working programmer")
        await page.locator('input[type="file"]').set_input_files(str(BOOKS / "nlp_working_programmer.pdf"))
        await page.get_by_role("button", name="Upload").click()
        row = page.locator("#library-tree tr", has_text="nlp_working_programmer.pdf")
        await expect(row.locator("td.status")).to_contain_text("ready", timeout=120_000)
    finally:
        await worker.stop()


async def test_ask_open_a_cited_page_and_follow_up(page):
    await sign_up(page)
    await _upload_and_wait_until_ready(page)

    await page.get_by_role("link", name="Chat", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/chat$"))
    await expect(page.get_by_role("heading", name="Ask your books")).to_be_visible()
    await page.get_by_label("Semester").select_option("Y3S2")
    await page.get_by_label("Subject").select_option("NLP")
    await expect(page.get_by_label("NLP for the working programmer")).to_be_visible()
    await screenshot(page, "chat-empty")

    question = page.get_by_label("Your question")
    await question.fill(QUESTION)
    await question.press("Enter")
    answers = page.locator("#chat-messages .message.assistant")
    first = answers.nth(0)
    await expect(first.locator(".sources .chip").first).to_be_visible(timeout=60_000)
    # No model is configured in tests: the answer is the best-matching passages, labelled as such.
    await expect(first.locator(".bubble")).to_contain_text("No language model is configured")
    await expect(first).to_have_class(re.compile(r"\bextractive\b"))
    await expect(page.locator("#chat-messages .message.user").first).to_have_text(QUESTION)
    await expect(page.get_by_role("button", name="Send")).to_be_enabled()
    await expect(question).to_have_value("")

    # The conversation now has an address, and is in the history as the open one.
    await expect(page).to_have_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
    conversation_url = page.url
    opened = page.locator("#chat-history li.current a")
    await expect(opened).to_have_text(QUESTION)
    assert conversation_url.endswith(await opened.get_attribute("href"))

    # A chip names book and page, shows its quote on hover, and opens that page beside the chat.
    chip = first.locator(".sources button.chip").first
    await expect(chip).to_have_text(re.compile(r"^\[1\] NLP for the working programmer, p\. \d+$"))
    quote = await chip.get_attribute("title")
    assert quote and quote.strip()
    await chip.hover()
    pane = page.locator("#pdf-pane")
    await expect(pane).to_be_hidden()
    await chip.click()
    frame = page.locator("#pdf-frame")
    await expect(frame).to_be_visible()
    page_number = await chip.get_attribute("data-page")
    src = await frame.get_attribute("src")
    assert re.fullmatch(rf"/files/[0-9a-f-]{{36}}/content#page={page_number}", src), src
    await expect(pane.locator("#pdf-quote")).to_have_text(quote)
    await expect(pane.locator("#pdf-page")).to_have_text(f"page {page_number}")
    await expect(chip).to_have_class(re.compile(r"\bactive\b"))

    # The [2] in the answer's text opens the second source.
    second_chip = first.locator('.chip[data-n="2"]')
    await first.locator('sup.cite[data-cite="2"]').first.click()
    await expect(frame).to_have_attribute(
        "src", re.compile(re.escape(f"#page={await second_chip.get_attribute('data-page')}") + "$")
    )
    await expect(second_chip).to_have_class(re.compile(r"\bactive\b"))
    await page.wait_for_timeout(1000)  # only for the screenshot: the PDF viewer paints in its own time
    await screenshot(page, "chat-answer-with-source")

    # A follow-up continues the same conversation.
    await question.fill("And the most frequent ones?")
    await question.press("Enter")
    await expect(answers).to_have_count(2)
    await expect(answers.nth(1).locator(".sources .chip").first).to_be_visible(timeout=60_000)
    await expect(answers.nth(1).locator(".bubble")).to_contain_text("No language model is configured")
    assert page.url == conversation_url
    await expect(page.locator("#chat-history li")).to_have_count(1)
    await screenshot(page, "chat-follow-up")
    # Closing the page gives its room back to the history (hidden beside it on screens this narrow).
    await page.get_by_role("button", name="Close").click()
    await expect(pane).to_be_hidden()
    await expect(page.locator("#chat-history")).to_be_visible()

    # Reopened later from the history, the conversation and its scope come back from the server.
    await page.get_by_role("link", name="New chat").click()
    await expect(page).to_have_url(re.compile(r"/chat$"))
    await expect(page.locator("#chat-messages .message")).to_have_count(0)
    await page.locator("#chat-history").get_by_role("link", name=QUESTION).click()
    await expect(page).to_have_url(conversation_url)
    await expect(page.locator("#chat-messages .message.user")).to_have_text(
        [QUESTION, "And the most frequent ones?"]
    )
    await expect(answers).to_have_count(2)
    await expect(page.get_by_label("Semester")).to_have_value("Y3S2")
    await expect(page.get_by_label("Subject")).to_have_value("NLP")
    await answers.nth(1).locator(".sources button.chip").first.click()
    await expect(frame).to_be_visible()

    await page.set_viewport_size({"width": 390, "height": 844})
    await screenshot(page, "chat-phone")
    await page.set_viewport_size({"width": 1200, "height": 800})

    await page.get_by_role("button", name="Close").click()

    # Deleting the open conversation, after confirming, starts a new chat.
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name=f"Delete conversation {QUESTION}").click()
    await expect(page).to_have_url(re.compile(r"/chat$"))
    await expect(page.locator("#chat-history")).to_contain_text("No conversations yet")
    assert (await page.request.get(conversation_url)).status == 404
