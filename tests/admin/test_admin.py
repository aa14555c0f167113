"""The admin area: only admins get in, they see counts and metadata but no library contents, their
actions are logged, and deactivation ends a user's sessions at the next request."""

import re
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.config import get_settings
from app.routing import api_routes
from tests.support.accounts import PASSWORD, bearer_token, make_admin, new_email, register
from tests.support.library import Student, new_student, pdf_bytes

APP_ROLE = get_settings().app_db_role


async def new_admin(client, owner_engine) -> Student:
    student = await new_student(client, name="Root")
    await make_admin(owner_engine, student.id)
    return student


def admin_routes(app) -> list[tuple[str, str]]:
    """Every (method, path) of the admin area, found from the router: a new route is covered as it lands."""
    routes = []
    for full_path, route in api_routes(app):
        if full_path.startswith(("/admin", "/api/admin")):
            path = re.sub(r"\{run_id\}", "1", full_path)
            path = re.sub(r"\{\w+\}", str(uuid.uuid4()), path)
            routes += [(method, path) for method in route.methods]
    return routes


async def test_non_admins_get_404_on_every_admin_route_and_are_logged(app, client, superuser_engine):
    routes = admin_routes(app)
    assert len(routes) >= 10, routes
    student = await new_student(client)
    for method, path in routes:
        anonymous = await client.request(method, path)
        assert anonymous.status_code == 404, (method, path, anonymous.status_code)
        as_student = await client.request(method, path, headers=student.headers)
        assert as_student.status_code == 404, (method, path, as_student.status_code)
        assert "admin" not in as_student.text.lower() or path.startswith("/api")
    # fastapi-users' own user management answers 404 too (not 403, which would confirm it exists).
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(method, f"/users/{student.id}", headers=student.headers)
        assert response.status_code in (404, 405), (method, response.status_code)
    async with superuser_engine.connect() as conn:
        probes = await conn.scalar(
            text(
                "select count(*) from audit_log"
                " where user_id = :u and action = 'admin.access' and outcome = 'denied'"
            ),
            {"u": student.id},
        )
    assert probes == len(routes)


async def test_cookie_session_of_a_student_gets_the_404_page(client):
    email = new_email()
    await register(client, email)
    assert (
        await client.post("/auth/cookie/login", data={"username": email, "password": PASSWORD})
    ).status_code == 204
    response = await client.get("/admin/users")
    assert response.status_code == 404
    assert "There is nothing here" in response.text


async def test_admin_sees_counts_and_metadata_but_cannot_open_a_users_books(client, owner_engine):
    admin = await new_admin(client, owner_engine)
    student = await new_student(client)
    first = await student.upload_one(("notes.pdf", pdf_bytes("one")))
    await student.upload_one(("more.pdf", pdf_bytes("two")))

    listed = await admin.get("/api/admin/users", params={"q": student.user["email"]})
    assert listed.status_code == 200, listed.text
    (row,) = listed.json()["users"]
    assert row["email"] == student.user["email"]
    assert row["documents"] == 2
    assert row["bytes_used"] == len(pdf_bytes("one")) + len(pdf_bytes("two"))
    assert row["quota_documents"] == get_settings().default_quota_documents
    assert row["last_active_at"] is not None  # the student's own requests mark them active
    assert "notes.pdf" not in listed.text

    # An admin is a tenant like any other when it comes to a library: A's file is not there for them.
    for url in (f"/api/files/{first['id']}", f"/files/{first['id']}/content"):
        assert (await student.get(url)).status_code == 200, url
        assert (await admin.get(url)).status_code == 404, url


async def test_search_matches_email_and_name(client, owner_engine):
    admin = await new_admin(client, owner_engine)
    named = await new_student(client, name="Hypatia Zq")
    by_name = (await admin.get("/api/admin/users", params={"q": "hypatia zq"})).json()
    assert [u["id"] for u in by_name["users"]] == [named.id]
    assert (await admin.get("/api/admin/users", params={"q": "%"})).json()["total"] == 0  # no wildcards


async def test_deactivation_ends_cookie_and_bearer_sessions_at_the_next_request(client, owner_engine):
    admin = await new_admin(client, owner_engine)
    email = new_email()
    user = await register(client, email)
    token = await bearer_token(client, email)
    assert (
        await client.post("/auth/cookie/login", data={"username": email, "password": PASSWORD})
    ).status_code == 204
    assert (await client.get("/library")).status_code == 200
    cookie = client.cookies.get("studyrag_auth")
    client.cookies.clear()

    changed = await admin.client.patch(
        f"/api/admin/users/{user['id']}", json={"is_active": False}, headers=admin.headers
    )
    assert changed.status_code == 200, changed.text
    assert (await client.get("/users/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    client.cookies.set("studyrag_auth", cookie, domain="testserver.local")
    page = await client.get("/library")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    client.cookies.clear()

    # Reactivated: the user may log in again, but the sessions cut off stay dead.
    assert (await admin.client.patch(
        f"/api/admin/users/{user['id']}", json={"is_active": True}, headers=admin.headers
    )).status_code == 200  # fmt: skip
    assert (await client.get("/users/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    fresh = await bearer_token(client, email)
    assert (await client.get("/users/me", headers={"Authorization": f"Bearer {fresh}"})).status_code == 200


async def test_an_admin_cannot_deactivate_themselves(client, owner_engine):
    admin = await new_admin(client, owner_engine)
    response = await admin.client.patch(
        f"/api/admin/users/{admin.id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status_code == 409
    assert (await admin.get("/users/me")).status_code == 200


async def test_quotas_set_by_an_admin_apply_to_the_next_upload(client, owner_engine):
    admin = await new_admin(client, owner_engine)
    student = await new_student(client)
    await student.upload_one(("a.pdf", pdf_bytes("a")))
    response = await admin.client.patch(
        f"/api/admin/users/{student.id}", json={"quota_documents": 1}, headers=admin.headers
    )
    assert response.status_code == 200
    refused = await student.upload(("b.pdf", pdf_bytes("b")))
    (result,) = refused.json()["files"]
    assert result["status"] == "rejected" and "full (1 documents)" in result["error"]

    reset = await admin.client.patch(
        f"/api/admin/users/{student.id}", json={"reset_quotas": True}, headers=admin.headers
    )
    assert reset.json()["quota_documents"] is None
    await student.upload_one(("b.pdf", pdf_bytes("b")))


async def test_the_audit_log_shows_logins_failures_refusals_and_admin_actions(client, owner_engine):
    admin = await new_admin(client, owner_engine)
    a = await new_student(client)
    b = await new_student(client)
    document = await a.upload_one(("a.pdf", pdf_bytes("audit")))
    assert (await b.get(f"/api/files/{document['id']}")).status_code == 404
    bad = await client.post(
        "/auth/jwt/login", data={"username": a.user["email"], "password": "wrong password!"}
    )
    assert bad.status_code == 400
    await admin.client.patch(f"/api/admin/users/{a.id}", json={"quota_documents": 9}, headers=admin.headers)

    async def log(**params) -> list[dict]:
        response = await admin.get("/api/admin/audit-log", params=params)
        assert response.status_code == 200, response.text
        return response.json()["events"]

    of_a = {(e["action"], e["outcome"]) for e in await log(user=a.user["email"])}
    assert {
        ("register", "ok"),
        ("login", "ok"),
        ("upload", "ok"),
        ("login", "failed"),
        ("admin.quota", "ok"),
    } <= of_a
    refused = await log(user=b.id, outcome="denied")
    assert refused and all(e["user_id"] == b.id and e["outcome"] == "denied" for e in refused)
    quota_changes = await log(action="admin.quota", user=admin.id)
    assert (
        quota_changes[0]["target"] == a.user["email"] and quota_changes[0]["detail"]["quota_documents"] == 9
    )
    # Reading the log is itself an admin action, logged before the answer.
    reads = await log(action="admin.read", user=admin.id)
    assert len(reads) >= 4 and reads[0]["target"] == "audit log"
    assert (await admin.get("/api/admin/audit-log", params={"outcome": "maybe"})).status_code == 422


async def test_the_admin_read_path_is_closed_to_ordinary_requests(app_engine, owner_engine, client):
    admin = await new_admin(client, owner_engine)
    student = await new_student(client)
    async with app_engine.connect() as conn:
        # The app role itself may not call the admin functions, nor read tenant rows as the admin role.
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(text("select * from admin_user_usage()"))
        await conn.rollback()
        await conn.execute(text(f'set local role "{APP_ROLE}_admin"'))
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(text("select count(*) from documents"))
        await conn.rollback()
        # As the admin role, the functions want an active admin's id: a student's is refused...
        await conn.execute(text(f'set local role "{APP_ROLE}_admin"'))
        await conn.execute(text("select set_config('app.admin_id', :a, true)"), {"a": student.id})
        with pytest.raises(DBAPIError, match="for active admins only"):
            await conn.execute(text("select * from admin_user_usage()"))
        await conn.rollback()
        # ...an admin's works, and is logged in the same transaction.
        await conn.execute(text(f'set local role "{APP_ROLE}_admin"'))
        await conn.execute(text("select set_config('app.admin_id', :a, true)"), {"a": admin.id})
        rows = (await conn.execute(text("select * from admin_user_usage()"))).all()
        await conn.execute(text("reset role"))
        await conn.execute(text("select set_config('app.user_id', :a, true)"), {"a": admin.id})
        logged = await conn.scalar(
            text("select count(*) from audit_log where user_id = :a and action = 'admin.read'"),
            {"a": admin.id},
        )
        await conn.rollback()
    assert isinstance(rows, list)
    assert logged == 1


async def test_the_storage_check_is_on_the_admin_path_only_and_every_call_is_logged(
    app, app_engine, superuser_engine, owner_engine, client
):
    """`audit_storage` lists every tenant's document ids: the app role itself may not call it, a student
    may not through the admin role, and an admin's call (or the operator's) leaves an admin.read row."""
    admin = await new_admin(client, owner_engine)
    student = await new_student(client)
    async with app_engine.connect() as conn:
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(text("select * from audit_storage('{}')"))
        await conn.rollback()
        await conn.execute(text(f'set local role "{APP_ROLE}_admin"'))
        await conn.execute(text("select set_config('app.admin_id', :a, true)"), {"a": student.id})
        with pytest.raises(DBAPIError, match="for active admins only"):
            await conn.execute(text("select * from audit_storage('{}')"))
        await conn.rollback()
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(text("select * from audit_forget_documents('{}')"))
        await conn.rollback()

    from app.admin.isolation import check_storage
    from app.models import User

    marker = f"users/{uuid.uuid4()}/raw_data/a/b/c/marker.pdf"
    for who in (admin, None):
        async with app_engine.connect() as conn:
            on_behalf_of = User(id=uuid.UUID(who.id)) if who else None
            result = await check_storage(conn, app.state.storage, keys=[marker], admin=on_behalf_of)
            await conn.commit()
        assert f"object under a prefix that is no user: {marker}" in result.offenders
        async with superuser_engine.connect() as conn:
            logged = (
                await conn.execute(
                    text(
                        "select user_id, detail from audit_log where action = 'admin.read'"
                        " and target = 'stored files against documents' order by id desc limit 1"
                    )
                )
            ).one()
        assert logged.user_id == (uuid.UUID(who.id) if who else None)
        assert logged.detail == {"objects": 1, "by": "admin" if who else "operator"}


async def test_the_isolation_audit_api_runs_keeps_history_and_is_logged(client, owner_engine):
    admin = await new_admin(client, owner_engine)

    # Running an audit records a run and reads the whole store: a POST, never a GET (links, prefetch).
    async def latest_run() -> int | None:
        runs = (await admin.get("/api/admin/audit/runs")).json()
        return runs[0]["id"] if runs else None

    before = await latest_run()
    assert (await admin.get("/api/admin/audit")).status_code == 405
    assert await latest_run() == before
    response = await admin.client.post("/api/admin/audit", headers=admin.headers)
    assert response.status_code == 200, response.text
    run = response.json()
    names = [check["name"] for check in run["checks"]]
    assert names == [
        "Row-level security on every tenant table",
        "The app's role cannot bypass the policies",
        "Ownership is consistent",
        "Storage matches the database",
        "Live probe with two canary tenants",
    ]
    for check in run["checks"]:
        if check["name"] != "Storage matches the database":  # other tests' leftovers may be orphans
            assert check["passed"], check
    history = (await admin.get("/api/admin/audit/runs")).json()
    assert history[0]["id"] == run["id"] and history[0]["via"] == "api"
    events = (
        await admin.get("/api/admin/audit-log", params={"action": "admin.audit", "user": admin.id})
    ).json()
    assert events["events"][0]["target"] == f"run {run['id']}"


async def test_a_flood_of_refusals_is_counted_not_written_row_by_row(
    app, client, superuser_engine, monkeypatch
):
    """Each user's refusals of one kind are written one by one up to the bound per minute; the rest
    of that minute becomes one row with the count, so the evidence is all there in a few rows."""
    import time

    from app import audit_log

    monkeypatch.setattr(get_settings(), "audit_refusals_per_minute", 3)
    student = await new_student(client)
    started = time.time()
    for _ in range(8):
        assert (await student.get(f"/api/files/{uuid.uuid4()}")).status_code == 404
        assert (await student.get("/api/admin/users")).status_code == 404
    minutes = int(time.time() // 60) - int(started // 60) + 1
    await audit_log.flush_refusal_counts(app.state.arq, app.state.sessionmaker, now=time.time() + 61)

    async with superuser_engine.connect() as conn:
        rows = (
            await conn.execute(
                text("select action, detail from audit_log where user_id = :u and outcome = 'denied'"),
                {"u": student.id},
            )
        ).all()
    for action in ("file.read", "admin.access"):
        single = [detail for kind, detail in rows if kind == action and not detail.get("aggregated")]
        counted = [detail for kind, detail in rows if kind == action and detail.get("aggregated")]
        assert len(single) <= 3 * minutes and counted, rows
        assert len(single) + sum(detail["more"] for detail in counted) == 8, rows
