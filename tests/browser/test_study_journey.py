"""A student makes flashcards for a chapter, reviews three with the keyboard, exports the deck, takes the
chapter's quiz and reads its study guide — in Chromium."""

import csv
import io
import re
import zipfile

from playwright.async_api import expect

from tests.support.browser import screenshot, sign_up, upload_until_ready
from tests.support.corpus import BOOKS

CHAPTER = "What is logic?"


async def _chapter(page, *, reload: bool = True):
    if reload:
        await page.goto("/library")
    await page.locator("details.chapters > summary").click()
    return page.locator("details.chapters li", has_text=CHAPTER)


async def test_cards_for_a_chapter_review_export_quiz_and_guide(page):
    await sign_up(page)
    await upload_until_ready(
        page, BOOKS / "forallx_magnus.pdf", semester="Y1S1", subject="Logic", book="forallx"
    )

    # Flashcards for chapter 1 (its chapters show as soon as the file is ready): a deck of cited cards.
    await (await _chapter(page, reload=False)).get_by_role("button", name="Flashcards").click()
    await expect(page).to_have_url(re.compile(r"/study/decks/[0-9a-f-]+$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"forallx — {CHAPTER}")
    cards = page.locator("li.flashcard")
    await expect(cards).to_have_count(20)
    await expect(cards.first.locator("a.cite-page")).to_have_text(re.compile(r"page \d+"))
    await expect(page.locator("li.flashcard", has_text="deductively valid").first).to_be_visible()
    await screenshot(page, "study-deck")

    # Review three cards from the keyboard: Space shows the answer, a digit grades it.
    await page.get_by_role("link", name="Review 20 due cards").click()
    await expect(page.locator("#due-left")).to_have_text("20 cards due")
    # The page came in through hx-boost, which loads its script after the swap: wait until it runs.
    await page.wait_for_function("window.studyrag_study === true")
    fronts = []
    for grade, left in (("3", "19 cards due"), ("4", "18 cards due"), ("2", "17 cards due")):
        front = await page.locator("#card-front").inner_text()
        fronts.append(front)
        await expect(page.locator("#card-back")).to_be_hidden()
        await page.keyboard.press("Space")
        await expect(page.locator("#card-back")).to_be_visible()
        await expect(page.locator("#answer a.cite-page")).to_have_text(re.compile(r"page \d+"))
        if grade == "3":
            await screenshot(page, "study-review-answer")
        await page.keyboard.press(grade)
        await expect(page.locator("#due-left")).to_have_text(left)
    assert len(set(fronts)) == 3, fronts

    # Export: an Anki package holding every card, and a CSV with book and page.
    deck_url = page.url.removesuffix("/review")
    await page.goto(deck_url)
    async with page.expect_download() as anki:
        await page.get_by_role("link", name="Export for Anki (.apkg)").click()
    package = await (await anki.value).path()
    assert "collection.anki2" in zipfile.ZipFile(package).namelist()
    async with page.expect_download() as sheet:
        await page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO((await (await sheet.value).path()).read_text())))
    assert len(rows) == 20 and {row["book"] for row in rows} == {"forallx"}
    assert all(5 <= int(row["page"]) <= 15 for row in rows), rows

    # The library says how many cards are due now.
    await page.goto("/library")
    await expect(page.locator(".due-note")).to_have_text(re.compile(r"^1[78] cards due — review$"))

    # The chapter's quiz: each answer checked on the page, with its source.
    await (await _chapter(page)).get_by_role("link", name="Quiz").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Quiz: forallx — {CHAPTER}")
    questions = page.locator("li.question")
    total = await questions.count()
    assert total >= 5
    for index in range(total):
        question = questions.nth(index)
        await expect(question.locator("label.choice")).to_have_count(4)
        await question.locator("label.choice").first.click()
        await expect(question.locator(".verdict-text")).to_have_text(re.compile(r"^(Right\.|Not quite)"))
        await expect(question.locator("details.quiz-answer a.cite-page")).to_be_visible()
    right = await page.locator("li.question.right").count()
    await expect(page.locator("#quiz-score")).to_have_text(f"{right} of {total} right — done")
    await screenshot(page, "study-quiz")

    # The chapter's study guide: defined terms with their pages.
    await (await _chapter(page)).get_by_role("link", name="Guide").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Study guide: forallx — {CHAPTER}")
    await expect(page.locator("dl.guide-terms dt", has_text="deductively valid")).to_be_visible()
    await expect(page.locator("ul.guide-central li").first.locator("a.cite-page")).to_be_visible()
    await screenshot(page, "study-guide")
