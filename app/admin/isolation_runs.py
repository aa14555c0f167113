"""Running the isolation audit from any of its three faces (page, API, command line), keeping its
history, and cleaning up the storage orphans it lists."""

import time
import uuid
from dataclasses import asdict, dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.admin.access import admin_rows
from app.admin.isolation import STORAGE_CHECK, CheckResult, run_audit, storage_problems
from app.audit_log import record, record_as
from app.exceptions import NotFound
from app.library.storage import Storage
from app.models import IsolationAuditRun, User
from app.tenancy import Tenant, bind_tenant

HISTORY_SIZE = 20


async def run_and_record(
    engine: AsyncEngine, storage: Storage, *, app_role: str, admin: User | None, via: str
) -> IsolationAuditRun:
    """Run every check on a connection of the app's role, then keep the run and log who ran it."""
    started = time.perf_counter()
    async with engine.connect() as conn:
        results = await run_audit(conn, app_role=app_role, storage=storage, admin=admin)
        await conn.rollback()
    passed = all(result.passed for result in results)
    async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
        if admin is not None:
            await bind_tenant(session, Tenant(admin.id))
        run = IsolationAuditRun(
            duration_ms=round((time.perf_counter() - started) * 1000),
            run_by=admin.id if admin else None,
            via=via,
            passed=passed,
            results=[asdict(result) for result in results],
        )
        session.add(run)
        await session.flush()
        await record(
            session,
            action="admin.audit",
            outcome="ok" if passed else "failed",
            user_id=admin.id if admin else None,
            target=f"run {run.id}",
            detail={"via": via, "failed": [r.name for r in results if not r.passed]},
        )
    return run


async def history(session: AsyncSession, limit: int = HISTORY_SIZE) -> list[IsolationAuditRun]:
    runs = await session.scalars(select(IsolationAuditRun).order_by(IsolationAuditRun.id.desc()).limit(limit))
    return list(runs)


class RunNotFound(NotFound):
    default_message = "No such audit run."


async def get_run(session: AsyncSession, run_id: int) -> IsolationAuditRun:
    run = await session.get(IsolationAuditRun, run_id)
    if run is None:
        raise RunNotFound()
    return run


def results_of(run: IsolationAuditRun) -> list[CheckResult]:
    return [CheckResult(**result) for result in run.results]


def storage_orphans(run: IsolationAuditRun) -> set[str]:
    """The storage problems a run listed, as it showed them."""
    return {
        offender
        for result in results_of(run)
        if result.name == STORAGE_CHECK
        for offender in result.offenders
    }


@dataclass
class Cleanup:
    deleted_objects: list[str] = field(default_factory=list)
    forgotten_documents: list[str] = field(default_factory=list)


async def clean_storage(
    engine: AsyncEngine, storage: Storage, *, listed: set[str], admin: User | None, via: str
) -> Cleanup:
    """Remove the orphans that `listed` (a run's storage offenders) named and that are still orphans
    now: objects no user or document claims are deleted, and documents whose object is gone are
    removed (their passages go with them). An upload in flight between object and commit is never
    in both lists."""
    done = Cleanup()
    async with engine.connect() as conn:
        current = await storage_problems(conn, storage, admin=admin)
        await conn.commit()  # the check's admin.read entry stays, whatever happens next
        missing: list[uuid.UUID] = []
        for problem, item in current:
            if f"{problem}: {item}" not in listed:
                continue
            if problem == "document whose file is missing":
                missing.append(uuid.UUID(item))
            else:
                await storage.delete(item)
                done.deleted_objects.append(item)
        if missing:
            for document_id, owner in await admin_rows(
                conn, admin, "select id, user_id from audit_forget_documents(:ids)", {"ids": missing}
            ):
                done.forgotten_documents.append(str(document_id))
                await record_as(
                    conn,
                    owner,
                    action="document.removed",
                    target=str(document_id),
                    outcome="ok",
                    detail={"reason": "its stored file was missing", "by": "admin clean-up"},
                )
        await record_as(
            conn,
            admin.id if admin else None,
            action="admin.cleanup",
            outcome="ok",
            target="storage",
            detail={
                "via": via,
                "objects": len(done.deleted_objects),
                "documents": len(done.forgotten_documents),
            },
        )
        await conn.commit()
    return done


async def clean_up_run(
    engine: AsyncEngine, storage: Storage, session: AsyncSession, run_id: int, *, admin: User, via: str
) -> tuple[IsolationAuditRun, Cleanup]:
    """The run (RunNotFound if there is none) and the clean-up of the orphans it listed: API and page
    alike."""
    run = await get_run(session, run_id)
    done = await clean_storage(engine, storage, listed=storage_orphans(run), admin=admin, via=via)
    return run, done
