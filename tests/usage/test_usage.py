"""Usage metering per user per month, the admin's cost view, each user's own usage, monthly limits."""

import pytest
from sqlalchemy import text

from app.config import get_settings
from app.usage.service import GIB, this_month
from tests.support.accounts import make_admin, new_email, register
from tests.support.ingestion import run_worker_until_idle
from tests.support.library import new_student, text_pdf

RIVERS = text_pdf(
    "Rivers carry sediment from the mountains to the sea; a delta forms where the river slows.",
    "Meanders grow as the outer bank erodes and the inner bank gathers sand.",
)
SCOPE = {"active_semester": "Y1S1", "active_subject": "Logic"}


@pytest.fixture
def model(model):
    model.reply = lambda messages: "A delta forms where the river slows and drops its sediment [1]."
    return model


async def ask(student, question: str = "Where does a delta form?"):
    return await student.client.post("/api/chat", json={"query": question, **SCOPE}, headers=student.headers)


async def student_with_rivers(client, services):
    student = await new_student(client)
    await student.upload_one(("rivers.pdf", RIVERS))
    await run_worker_until_idle(services)
    return student


async def test_usage_counts_rise_after_an_upload_and_a_question(client, services, model):
    student = await new_student(client)
    assert (await student.get("/api/usage")).json()["questions"] == 0
    await student.upload_one(("rivers.pdf", RIVERS))
    await run_worker_until_idle(services)

    ingested = (await student.get("/api/usage")).json()
    assert ingested["month"] == this_month().strftime("%Y-%m")
    assert (ingested["documents_ingested"], ingested["pages_ingested"], ingested["documents"]) == (1, 2, 1)
    assert ingested["storage_bytes"] == len(RIVERS) and ingested["passages"] >= 1
    assert ingested["questions"] == 0 and ingested["embedding_tokens"] == 0  # the local model

    assert (await ask(student)).status_code == 200
    asked = (await student.get("/api/usage")).json()
    assert asked["questions"] == 1
    # The fake model reports word counts as tokens: the prompt holds the passages, the answer 12 words.
    assert asked["llm_tokens_in"] > 20 and asked["llm_tokens_out"] == 12
    page = await student.get("/account")
    assert page.status_code == 200 and "Questions asked" in page.text
    assert "No monthly limits apply" in page.text


async def test_one_user_never_sees_anothers_usage(client, services):
    ada = await student_with_rivers(client, services)
    assert (await ask(ada)).status_code == 200
    bob = await new_student(client, "Bob")

    seen = (await bob.get("/api/usage")).json()
    assert (seen["questions"], seen["documents"], seen["storage_bytes"], seen["pages_ingested"]) == (
        0,
        0,
        0,
        0,
    )
    page = (await bob.get("/account")).text
    assert ada.user["email"] not in page and "Questions asked" in page
    assert (await bob.get(f"/api/usage?user={ada.id}")).json()["questions"] == 0  # no such parameter
    assert (await bob.get("/api/admin/usage")).status_code == 404
    assert (await bob.get("/admin/usage")).status_code == 404
    assert (await client.get("/api/usage")).status_code == 401


async def test_admins_see_every_users_counts_and_the_estimated_cost(client, services, owner_engine, model):
    ada = await student_with_rivers(client, services)
    assert (await ask(ada)).status_code == 200
    admin_email = new_email("admin")
    admin = await register(client, admin_email)
    await make_admin(owner_engine, admin["id"])
    from tests.support.accounts import bearer_token

    headers = {"Authorization": f"Bearer {await bearer_token(client, admin_email)}"}
    settings = get_settings()

    report = (await client.get("/api/admin/usage", headers=headers)).json()
    (row,) = [r for r in report["users"] if r["user_id"] == ada.id]
    assert row["email"] == ada.user["email"] and row["questions"] == 1 and row["documents_ingested"] == 1
    assert row["storage_bytes"] == len(RIVERS) and row["llm_tokens_out"] == 12
    expected = (
        row["storage_bytes"] / GIB * settings.price_storage_gb_month
        + row["llm_tokens_in"] / 1e6 * settings.price_llm_input_per_million
        + row["llm_tokens_out"] / 1e6 * settings.price_llm_output_per_million
    )
    assert row["cost"]["total"] == pytest.approx(expected, abs=1e-4)
    assert "text" not in row and "rivers" not in str(row).lower()  # counts, never content
    assert report["totals"]["questions"] >= 1 and report["active_users"] >= 1
    assert report["cost"]["hosting"] == settings.hosting_per_month
    assert report["cost"]["total"] == pytest.approx(
        sum(report["cost"][k] for k in ("storage", "llm_input", "llm_output", "embeddings", "hosting")),
        abs=1e-3,
    )
    assert report["cost"]["per_active_user"] == pytest.approx(
        report["cost"]["total"] / report["active_users"], abs=1e-3
    )
    async with owner_engine.connect() as conn:
        logged = await conn.scalar(
            text("select count(*) from audit_log where user_id = :a and action = 'admin.read'"),
            {"a": admin["id"]},
        )
    assert logged >= 1

    last_year = (await client.get("/api/admin/usage?month=2025-01", headers=headers)).json()
    assert [r for r in last_year["users"] if r["user_id"] == ada.id][0]["questions"] == 0
    assert (await client.get("/api/admin/usage?month=2025-13", headers=headers)).status_code == 422

    page = await client.get("/admin/usage", headers=headers)
    assert page.status_code == 200
    assert ada.user["email"] in page.text and "Per active user" in page.text and "Hosting" in page.text


async def test_the_usage_function_is_closed_to_ordinary_requests(app_engine):
    async with app_engine.connect() as conn:
        with pytest.raises(Exception, match="permission denied"):
            await conn.execute(text("select * from admin_usage(current_date)"))


async def test_a_monthly_question_limit_is_a_clear_refusal_and_an_admin_can_lift_it(
    client, services, owner_engine, monkeypatch
):
    student = await student_with_rivers(client, services)
    monkeypatch.setattr(get_settings(), "monthly_question_limit", 1)
    assert (await ask(student)).status_code == 200
    refused = await ask(student)
    assert refused.status_code == 429
    assert "You have asked 1 of your 1 questions this month" in refused.json()["detail"]
    page = await student.client.post(
        "/chat", data={"query": "And meanders?"}, headers={**student.headers, "Origin": "https://testserver"}
    )
    assert page.status_code == 429 and "1 of your 1 questions" in page.text

    admin_email = new_email("admin")
    admin = await register(client, admin_email)
    await make_admin(owner_engine, admin["id"])
    from tests.support.accounts import bearer_token

    headers = {"Authorization": f"Bearer {await bearer_token(client, admin_email)}"}
    lifted = await client.patch(f"/api/admin/users/{student.id}", json={"question_limit": 3}, headers=headers)
    assert lifted.status_code == 200 and lifted.json()["question_limit"] == 3
    assert (await ask(student)).status_code == 200
    assert (await student.get("/api/usage")).json()["question_limit"] == 3
    reset = await client.patch(f"/api/admin/users/{student.id}", json={"reset_limits": True}, headers=headers)
    assert reset.json()["question_limit"] is None
    assert (await ask(student)).status_code == 429  # the default of 1 again
    async with owner_engine.connect() as conn:
        actions = (
            await conn.execute(
                text("select action from audit_log where user_id = :a and action = 'admin.limits'"),
                {"a": admin["id"]},
            )
        ).all()
    assert len(actions) == 2


async def test_a_monthly_token_limit_stops_generated_answers(client, services, model, monkeypatch):
    student = await student_with_rivers(client, services)
    monkeypatch.setattr(get_settings(), "monthly_llm_token_limit", 10)
    assert (await ask(student)).status_code == 200  # under the limit when asked; the answer passes it
    refused = await ask(student)
    assert refused.status_code == 429
    assert "language-model tokens" in refused.json()["detail"]
    monkeypatch.setattr(get_settings(), "openai_api_key", None)  # extractive answers use no tokens
    assert (await ask(student)).status_code == 200
