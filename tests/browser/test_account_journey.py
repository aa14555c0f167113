"""A student signs up, lands on their library, logs out — in a real browser."""

import re

from playwright.async_api import expect

from tests.support.accounts import PASSWORD, new_email
from tests.support.browser import screenshot


async def test_sign_up_land_on_library_and_log_out(page):
    email = new_email()
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.get_by_role("link", name="Sign up").click()
    await expect(page.get_by_role("heading", name="Create your library")).to_be_visible()
    # htmx runs: from the CDN when online, else from the vendored copy (this machine is offline).
    assert await page.evaluate("typeof window.htmx") == "object"

    # A weak password is refused with a message in the page, and what was typed stays.
    await page.get_by_label("Name", exact=True).fill("Marie Curie")
    await page.get_by_label("Email", exact=True).fill(email)
    await page.get_by_label("Password", exact=True).fill("password")
    await page.get_by_role("button", name="Sign up").click()
    await expect(page.get_by_role("alert")).to_contain_text("most commonly used")
    await expect(page.get_by_label("Email", exact=True)).to_have_value(email)
    await screenshot(page, "signup-weak-password")

    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page).to_have_url(re.compile(r"/library$"))
    await expect(page.get_by_role("heading", name="Marie Curie's library")).to_be_visible()
    await expect(page.get_by_text("Your library is empty")).to_be_visible()
    await screenshot(page, "library-empty")

    await page.get_by_role("button", name="Log out").click()
    await expect(page).to_have_url(re.compile(r"/login\?logged_out=1$"))
    await expect(page.get_by_role("status")).to_have_text("You have been logged out.")
    await page.goto("/library")
    await expect(page).to_have_url(re.compile(r"/login\?next=/library$"))

    # And back in.
    await page.get_by_label("Email", exact=True).fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(re.compile(r"/library$"))
    await expect(page.get_by_role("heading", name="Marie Curie's library")).to_be_visible()


async def test_pages_fit_a_phone_screen(browser, live_server):
    context = await browser.new_context(base_url=live_server, viewport={"width": 375, "height": 740})
    page = await context.new_page()
    try:
        await page.goto("/signup")
        await expect(page.get_by_role("button", name="Sign up")).to_be_visible()
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        await screenshot(page, "signup-phone")
    finally:
        await context.close()
