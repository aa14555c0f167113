"""The one place tenant scope is decided and applied.

A `Tenant` is always the id of a user the code already trusts, never one a client names: for a request,
the authenticated user (`app.deps.get_tenant`; an admin acting in their own name, `app.admin.deps`);
for the worker, the user its job was queued for (`app.ingestion.tasks`); for the user manager and the
activity log, the user the event is about; for the CLI's bulk ingestion and evaluation, the account
named on the command line. Binding it to a session makes
every transaction of that session start with `set_config('app.user_id', <id>, true)`, which is what the
row-level security policies on tenant tables read. A session with no tenant sets it to '' — and the
policies then match no row at all.
"""

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import Select, event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_SET_USER = text("select set_config('app.user_id', :user_id, true)")
_INFO_KEY = "tenant"


@dataclass(frozen=True)
class Tenant:
    user_id: UUID


def current_tenant(session: AsyncSession | Session) -> Tenant | None:
    return session.info.get(_INFO_KEY)


def owned(statement: Select, model, tenant: Tenant) -> Select:
    """`statement` limited to the tenant's rows. RLS already enforces this; the filter also lets the
    planner use the (user_id, ...) indexes, and keeps a query correct on a connection without RLS."""
    return statement.where(model.user_id == tenant.user_id)


async def bind_tenant(session: AsyncSession, tenant: Tenant) -> None:
    """Scope `session` to `tenant`: the current transaction now, and every later one."""
    session.info[_INFO_KEY] = tenant
    if session.in_transaction():
        await session.execute(_SET_USER, {"user_id": str(tenant.user_id)})


@event.listens_for(Session, "after_begin")
def _apply_tenant(session: Session, transaction, connection) -> None:
    # Always set it, so a connection can never carry a previous transaction's tenant into this one.
    tenant: Tenant | None = session.info.get(_INFO_KEY)
    connection.execute(_SET_USER, {"user_id": str(tenant.user_id) if tenant else ""})
