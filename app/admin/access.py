"""The one way admin code reaches tenant tables: as the admin role, for one statement, logged.

The database functions behind it (migration 0006) may be executed only by the `<app>_admin` role,
which the app role holds without inheriting: a transaction must `SET LOCAL ROLE` to it, and nothing
but `admin_rows` does. Each function checks that `app.admin_id` names an active admin and writes an
`admin.read` row to the audit log before it answers.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.config import get_settings
from app.models import User


def admin_role() -> str:
    return f"{get_settings().app_db_role}_admin"


async def admin_rows(
    session: AsyncSession | AsyncConnection,
    admin: User | None,
    statement: str,
    params: dict[str, Any] | None = None,
) -> Sequence[Row[Any]]:
    """Run `statement` (a call of an admin function) as the admin role on behalf of `admin`; None is the
    operator at the command line, which only the functions that need no admin identity accept."""
    await session.execute(text(f'set local role "{admin_role()}"'))
    await session.execute(
        text("select set_config('app.admin_id', :admin, true)"), {"admin": str(admin.id) if admin else ""}
    )
    rows = (await session.execute(text(statement), params or {})).all()
    await session.execute(text("reset role"))
    await session.execute(text("select set_config('app.admin_id', '', true)"))
    return rows
