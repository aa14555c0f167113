"""The arq worker runs jobs against real Redis and Postgres."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from app.models import RevokedToken
from app.worker import make_worker


async def test_worker_purges_only_expired_revoked_tokens(app, services, app_engine):
    now = datetime.now(UTC)
    expired, live = uuid.uuid4(), uuid.uuid4()
    async with app_engine.begin() as conn:
        await conn.execute(
            insert(RevokedToken),
            [
                {"jti": expired, "expires_at": now - timedelta(minutes=1)},
                {"jti": live, "expires_at": now + timedelta(hours=1)},
            ],
        )

    job = await app.state.arq.enqueue_job("purge_revoked_tokens", _job_id=f"purge:{uuid.uuid4()}")
    worker = make_worker(
        services.redis_url, services.app_database_url, burst=True, poll_delay=0.05, handle_signals=False
    )
    try:
        await worker.main()
    finally:
        await worker.close()
    assert await job.result(timeout=5) >= 1

    async with app_engine.connect() as conn:
        remaining = set((await conn.execute(select(RevokedToken.jti))).scalars())
    assert live in remaining
    assert expired not in remaining
