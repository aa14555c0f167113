"""An admin finds a user, runs the isolation audit until it is all green, and deactivates the user —
whose open session ends at their next click."""

import io
import re
import uuid

import httpx
from playwright.async_api import expect

from app.config import get_settings
from app.library.storage import make_storage
from tests.support.accounts import PASSWORD, make_admin, new_email
from tests.support.browser import screenshot
from tests.support.library import pdf_bytes


async def _log_in(page, email: str) -> None:
    await page.goto("/login")
    await page.get_by_label("Email", exact=True).fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(re.compile(r"/library$"))


async def _search(page, text: str) -> None:
    """Type into the search box until the filtered table shows: right after a boosted navigation htmx
    may not have processed the new content yet, and a keystroke then sends nothing."""
    box = page.get_by_label("Search users")
    for _ in range(5):
        await box.fill("")
        await box.fill(text)
        try:
            await expect(page.get_by_text(f"matching “{text}”")).to_be_visible(timeout=3000)
            return
        except AssertionError:
            continue
    raise AssertionError(f"searching for {text} never narrowed the table")


async def test_admin_runs_the_audit_cleans_up_and_deactivates_a_user(
    browser, live_server, page, owner_engine
):
    admin_email, student_email = new_email("admin"), new_email("student")
    async with httpx.AsyncClient(base_url=live_server) as http:
        for email, name in ((admin_email, "Root"), (student_email, "Emmy Noether")):
            response = await http.post(
                "/auth/register", json={"email": email, "password": PASSWORD, "name": name}
            )
            assert response.status_code == 201, response.text
            if email == admin_email:
                await make_admin(owner_engine, response.json()["id"])
    # A file left behind under a user id that does not exist: the audit must catch it.
    stray = f"users/{uuid.uuid4()}/raw_data/Y1/Old/Book/left-behind.pdf"
    await make_storage(get_settings()).put(
        stray, io.BytesIO(pdf_bytes(stray)), content_type="application/pdf"
    )

    student_context = await browser.new_context(base_url=live_server)
    student = await student_context.new_page()
    try:
        await _log_in(student, student_email)
        await student.goto("/admin")
        await expect(student.get_by_text("There is nothing here")).to_be_visible()
        await student.goto("/library")

        page.on("dialog", lambda dialog: dialog.accept())
        await _log_in(page, admin_email)
        await page.get_by_role("link", name="Admin").click()
        await expect(page).to_have_url(re.compile(r"/admin/users$"))
        await _search(page, student_email)
        row = page.locator("tr", has_text=student_email)
        await expect(row).to_have_count(1)
        await expect(page.get_by_text("1 user matching")).to_be_visible()
        await screenshot(page, "admin-users")

        await page.get_by_role("link", name="Isolation audit").click()
        await page.get_by_role("button", name="Run audit").click()
        storage_check = page.locator("li.check", has_text="Storage matches the database")
        await expect(storage_check).to_contain_text("FAIL")
        await expect(storage_check).to_contain_text(stray)
        await page.get_by_role("button", name=re.compile(r"Clean up \d+ storage orphan")).click()
        await expect(page.get_by_role("status")).to_contain_text("Clean-up done")
        await page.get_by_role("button", name="Run audit").click()
        await expect(page.get_by_role("heading", name="All 5 checks passed")).to_be_visible()
        await expect(page.locator("li.check.fail")).to_have_count(0)
        await screenshot(page, "admin-isolation-audit")

        await page.get_by_role("link", name="Users").click()
        await expect(page).to_have_url(re.compile(r"/admin/users$"))
        await _search(page, student_email)
        await expect(page.get_by_text("1 user matching")).to_be_visible()
        await page.locator("tr", has_text=student_email).get_by_role("button", name="Deactivate").click()
        await expect(page.get_by_role("status")).to_contain_text("is deactivated")
        await expect(page.get_by_text("1 user matching")).to_be_visible()  # the search is kept
        await expect(page.locator("tr", has_text=student_email)).to_contain_text("deactivated")
        await screenshot(page, "admin-user-deactivated")

        # The student's open session ends at their next click.
        await student.get_by_role("link", name="Chat").click()
        await expect(student).to_have_url(re.compile(r"/login"))

        await page.get_by_role("link", name="Audit log").click()
        await expect(page).to_have_url(re.compile(r"/admin/audit-log$"))
        await page.get_by_label("User", exact=True).fill(student_email)
        await page.get_by_role("button", name="Filter").click()
        await expect(page.get_by_role("cell", name="admin.deactivate", exact=True)).to_have_count(1)
        await expect(page.get_by_role("cell", name="register", exact=True)).to_have_count(1)
        await screenshot(page, "admin-audit-log")
    finally:
        await student_context.close()
