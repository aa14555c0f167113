"""The tenant-isolation audit: checks that prove no user can reach another's data.

These are the checks that read only the catalog: every tenant-owned table (found from the catalog,
not from a list) has row-level security enabled and forced with a policy on `app.user_id`, and the
app's role can neither own those tables nor bypass the policies. They run on any connection, so a
test can plant a violation inside a transaction and roll it back.
"""

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# The one narrow exception to "every policy reads app.user_id": the NOLOGIN role behind
# ingestion_backlog() (migration 0003), which may read document ids and statuses.
ALLOWED_SYSTEM_POLICIES = {("documents", "ingestion_backlog")}


@dataclass
class CheckResult:
    name: str
    passed: bool
    offenders: list[str] = field(default_factory=list)


async def tenant_tables(conn: AsyncConnection) -> list[str]:
    rows = await conn.execute(
        text(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " join pg_attribute a on a.attrelid = c.oid"
            " where n.nspname = 'public' and c.relkind in ('r', 'p') and a.attname = 'user_id'"
            " and not a.attisdropped order by c.relname"
        )
    )
    return list(rows.scalars())


async def check_row_level_security(conn: AsyncConnection) -> CheckResult:
    """Each tenant table: RLS enabled and forced, and every policy for everyone reads app.user_id."""
    offenders = []
    for table in await tenant_tables(conn):
        enabled, forced = (
            await conn.execute(
                text(
                    "select relrowsecurity, relforcerowsecurity from pg_class"
                    " where oid = cast(:t as regclass)"
                ),
                {"t": f"public.{table}"},
            )
        ).one()
        if not enabled:
            offenders.append(f"{table}: row-level security is disabled")
        if not forced:
            offenders.append(f"{table}: row-level security is not forced (the owner bypasses it)")
        policies = (
            await conn.execute(
                text(
                    "select policyname, roles::text[], coalesce(qual, '') || coalesce(with_check, '')"
                    " from pg_policies where schemaname = 'public' and tablename = :t"
                ),
                {"t": table},
            )
        ).all()
        tenant_policies = [name for name, roles, expression in policies if "app.user_id" in expression]
        if not tenant_policies:
            offenders.append(f"{table}: no policy on app.user_id")
        for name, roles, expression in policies:
            if "app.user_id" not in expression and (table, name) not in ALLOWED_SYSTEM_POLICIES:
                offenders.append(f"{table}: policy {name} for {', '.join(roles)} does not read app.user_id")
    return CheckResult("Row-level security on every tenant table", not offenders, offenders)


async def check_app_role(conn: AsyncConnection, role: str) -> CheckResult:
    """The app's role: not superuser, no BYPASSRLS, owns no tenant table."""
    offenders = []
    row = (
        await conn.execute(
            text("select rolsuper, rolbypassrls from pg_roles where rolname = :r"), {"r": role}
        )
    ).one_or_none()
    if row is None:
        offenders.append(f"role {role} does not exist")
    else:
        superuser, bypass = row
        if superuser:
            offenders.append(f"{role} is a superuser")
        if bypass:
            offenders.append(f"{role} has BYPASSRLS")
    owned = await conn.execute(
        text("select tablename from pg_tables where schemaname = 'public' and tableowner = :r order by 1"),
        {"r": role},
    )
    tables = set(await tenant_tables(conn))
    offenders += [f"{role} owns {name}" for name in owned.scalars() if name in tables]
    return CheckResult("The app's role cannot bypass the policies", not offenders, offenders)


async def catalog_checks(conn: AsyncConnection, *, app_role: str) -> list[CheckResult]:
    return [await check_row_level_security(conn), await check_app_role(conn, app_role)]
