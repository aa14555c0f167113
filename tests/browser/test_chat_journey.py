"""A student asks an ingested book questions, opens a cited page, follows up and finds the chat again."""

import re

from playwright.async_api import expect

from tests.support.browser import screenshot, sign_up, upload_until_ready
from tests.support.corpus import BOOKS

QUESTION = "How do you count the words in a text?"


def _overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


async def _on_a_phone(browser, base_url: str, page, conversation_url: str) -> None:
    """The same student opens the conversation on a 390 px phone: the messages show and the composer,
    on screen, covers none of them; a cited page fills the screen at its page, and Close goes back."""
    phone = await browser.new_context(
        base_url=base_url,
        viewport={"width": 390, "height": 844},
        storage_state=await page.context.storage_state(),
    )
    try:
        tab = await phone.new_page()
        tab.set_default_timeout(15_000)
        await tab.goto(conversation_url)
        messages = tab.locator("#chat-messages")
        composer = tab.locator("#chat-form")
        last = messages.locator(".message").last
        await expect(last).to_be_visible()
        await expect(tab.get_by_label("Your question")).to_be_in_viewport()
        list_box, composer_box = await messages.bounding_box(), await composer.bounding_box()
        assert list_box["height"] >= 250, list_box  # room to read an answer
        assert not _overlap(list_box, composer_box), (list_box, composer_box)
        assert composer_box["y"] + composer_box["height"] <= 844, composer_box  # in reach, no scrolling
        # The conversation opens at its end: the last answer's sources are in view above the composer.
        chip = last.locator(".sources button.chip").first
        await expect(chip).to_be_in_viewport()
        chip_box = await chip.bounding_box()
        assert chip_box["y"] + chip_box["height"] <= composer_box["y"], (chip_box, composer_box)
        assert await tab.evaluate("document.documentElement.scrollWidth") <= 390
        await screenshot(tab, "chat-phone")

        pane = tab.locator("#pdf-pane")
        await expect(pane).to_be_hidden()  # no empty box before a citation is opened
        await chip.click()
        await expect(pane).to_be_visible()
        assert await pane.bounding_box() == {"x": 0, "y": 0, "width": 390, "height": 844}
        frame = pane.locator("#pdf-frame")
        page_number = await chip.get_attribute("data-page")
        await expect(frame).to_have_attribute("src", re.compile(rf"/content#page={page_number}$"))
        assert (await frame.bounding_box())["height"] >= 500  # the page, not a strip
        await expect(pane.locator("#pdf-page")).to_have_text(f"page {page_number}")
        back = pane.get_by_role("button", name="Close")
        await expect(back).to_be_in_viewport()
        await tab.wait_for_timeout(1000)  # only for the screenshot: the PDF viewer paints in its own time
        await screenshot(tab, "chat-phone-source")
        await back.click()
        await expect(pane).to_be_hidden()
        await expect(chip).to_be_in_viewport()  # back where the student was
        await expect(tab.get_by_label("Your question")).to_be_in_viewport()

        # The other pages fit the phone's width too.
        for path in ("/library", "/account"):
            await tab.goto(path)
            assert await tab.evaluate("document.documentElement.scrollWidth") <= 390, path
    finally:
        await phone.close()


async def test_ask_open_a_cited_page_and_follow_up(page, browser, live_server):
    await sign_up(page)
    await upload_until_ready(
        page,
        BOOKS / "nlp_working_programmer.pdf",
        semester="Y3S2",
        subject="NLP",
        book="NLP for the working programmer",
    )

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

    await _on_a_phone(browser, live_server, page, conversation_url)

    await page.get_by_role("button", name="Close").click()

    # Deleting the open conversation, after confirming, starts a new chat.
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name=f"Delete conversation {QUESTION}").click()
    await expect(page).to_have_url(re.compile(r"/chat$"))
    await expect(page.locator("#chat-history")).to_contain_text("No conversations yet")
    assert (await page.request.get(conversation_url)).status == 404
