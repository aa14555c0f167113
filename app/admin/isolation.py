"""The tenant-isolation audit: checks that prove no user can reach another's data.

1. Every tenant-owned table (found from the catalog, not from a list) has row-level security enabled
   and forced, with a policy on `app.user_id`.
2. The app's role (and any role it can become) is no superuser, cannot bypass RLS, owns no tenant table.
3. A live probe with two canary tenants, rolled back.
4. Ownership is consistent: passages and their documents, storage keys and their owners.
5. Storage matches the database: no object without a user or a document, no document without its object.

They run as the app role on any connection, so a test can plant a violation inside a transaction
and roll it back.
"""

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.admin.access import admin_rows
from app.ingestion.dimension import embedding_dimension
from app.library.keys import USERS_PREFIX
from app.library.storage import Storage
from app.models import User


def system_policies(app_role: str) -> set[tuple[str, str, str]]:
    """The narrow exceptions to "every policy reads app.user_id", as (table, policy, role): NOLOGIN roles
    that own SECURITY DEFINER functions and may read only ownership, status and size columns
    (migrations 0003, 0005, 0006 and 0014). The same policy for any other role is a violation."""
    return {
        ("documents", "ingestion_backlog", f"{app_role}_system"),
        ("documents", "audit_read", f"{app_role}_auditor"),
        ("chunks", "audit_read", f"{app_role}_auditor"),
        ("documents", "audit_forget", f"{app_role}_auditor"),
        ("documents", "admin_read", f"{app_role}_admin_reader"),
        ("audit_log", "admin_read", f"{app_role}_admin_reader"),
        ("audit_log", "admin_logged", f"{app_role}_admin_reader"),
        ("usage_months", "admin_read", f"{app_role}_admin_reader"),
    }


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


async def check_row_level_security(conn: AsyncConnection, app_role: str) -> CheckResult:
    """Each tenant table: RLS enabled and forced, and every policy for everyone reads app.user_id."""
    offenders = []
    allowed = system_policies(app_role)
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
            if "app.user_id" not in expression and not all((table, name, role) in allowed for role in roles):
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
    # Roles it holds (directly or through others) count as its own: it may inherit or SET ROLE to them.
    reachable = await conn.execute(
        text(
            "with recursive held(oid) as ("
            " select m.roleid from pg_auth_members m join pg_roles r on r.oid = m.member where r.rolname = :r"
            " union select m.roleid from pg_auth_members m join held h on m.member = h.oid)"
            " select r.rolname, r.rolsuper, r.rolbypassrls from pg_roles r join held h on h.oid = r.oid"
        ),
        {"r": role},
    )
    held = {role}
    for name, superuser, bypass in reachable.all():
        held.add(name)
        if superuser or bypass:
            offenders.append(
                f"{role} can become {name}, which {'is a superuser' if superuser else 'has BYPASSRLS'}"
            )
    owned = await conn.execute(
        text("select tablename, tableowner from pg_tables where schemaname = 'public' order by 1")
    )
    tables = set(await tenant_tables(conn))
    offenders += [
        f"{owner} owns {name}" if owner == role else f"{role} can become {owner}, which owns {name}"
        for name, owner in owned.all()
        if name in tables and owner in held
    ]
    return CheckResult("The app's role cannot bypass the policies", not offenders, offenders)


class UnsafeDatabaseRole(RuntimeError):
    """The app would connect as a role for which row-level security means nothing."""


async def refuse_unsafe_app_role(engine: AsyncEngine) -> None:
    """At start-up: the role the app really connects as (whatever its name) must pass the app-role
    check — no superuser, no BYPASSRLS, no tenant table of its own, nor any role it can become."""
    async with engine.connect() as conn:
        role = await conn.scalar(text("select current_user"))
        result = await check_app_role(conn, role)
    if not result.passed:
        raise UnsafeDatabaseRole(
            f"Refusing to start: the app's database role {role!r} is not held by row-level security "
            f"({'; '.join(result.offenders)}). Connect the app as a role that is no superuser, has no "
            "BYPASSRLS and owns no tenant table (APP_DATABASE_URL, or APP_DB_ROLE); the owner role "
            "(DATABASE_URL) is for migrations only."
        )


async def catalog_checks(conn: AsyncConnection, *, app_role: str) -> list[CheckResult]:
    return [await check_row_level_security(conn, app_role), await check_app_role(conn, app_role)]


async def _as(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(text("select set_config('app.user_id', :u, true)"), {"u": user_id})


async def check_live_probe(conn: AsyncConnection) -> CheckResult:
    """Two throwaway canary tenants, each with a document, a passage and a conversation; as canary A,
    unfiltered reads of every tenant table, a vector search and a full-text search must return nothing
    of canary B's, and with no user set every tenant table must look empty. Run it in a transaction
    that the caller rolls back (nothing of the canaries is ever committed)."""
    import uuid

    offenders: list[str] = []
    canaries = {name: str(uuid.uuid4()) for name in ("a", "b")}
    dimension = await embedding_dimension(conn)
    vector = "[" + ",".join(["0.1"] * dimension) + "]"
    for name, user_id in canaries.items():
        await conn.execute(
            text(
                "insert into users (id, email, hashed_password, is_active, is_superuser, is_verified)"
                " values (:u, :email, '!', false, false, false)"
            ),
            {"u": user_id, "email": f"canary-{user_id}@audit.invalid"},
        )
        await _as(conn, user_id)
        document_id = str(uuid.uuid4())
        await conn.execute(
            text(
                "insert into documents (id, user_id, semester, subject, book, filename, storage_key, sha256,"
                " size_bytes, status) values (:d, :u, 'audit', 'audit', 'audit', 'canary.pdf', :key, :sha, 1,"
                " 'ready')"
            ),
            {
                "d": document_id,
                "u": user_id,
                "key": f"users/{user_id}/raw_data/audit/canary.pdf",
                "sha": user_id,
            },
        )
        await conn.execute(
            text(
                "insert into chunks (user_id, document_id, ordinal, page_start, page_end, text, embedding)"
                " values (:u, :d, 0, 1, 1, :t, cast(:v as vector))"
            ),
            {"u": user_id, "d": document_id, "t": f"canary zebrafinch {name}", "v": vector},
        )
        await conn.execute(
            text("insert into conversations (id, user_id, title) values (gen_random_uuid(), :u, 'canary')"),
            {"u": user_id},
        )
    a, b = canaries["a"], canaries["b"]
    await _as(conn, a)
    for table in await tenant_tables(conn):
        leaked = await conn.scalar(text(f'select count(*) from "{table}" where user_id = :b'), {"b": b})
        if leaked:
            offenders.append(f"{table}: canary A reads {leaked} row(s) of canary B")
    by_vector = await conn.scalar(
        text(
            "select count(*) from (select user_id from chunks"
            " order by embedding <=> cast(:v as vector) limit 50) nearest where user_id = :b"
        ),
        {"v": vector, "b": b},
    )
    by_text = await conn.scalar(
        text("select count(*) from chunks where tsv @@ to_tsquery('english', 'zebrafinch') and user_id = :b"),
        {"b": b},
    )
    if by_vector:
        offenders.append("vector search as canary A returns canary B's passage")
    if by_text:
        offenders.append("full-text search as canary A returns canary B's passage")
    await _as(conn, "")
    for table in await tenant_tables(conn):
        visible = await conn.scalar(text(f'select count(*) from "{table}"'))
        if visible:
            offenders.append(f"{table}: {visible} row(s) visible with no user set")
    return CheckResult("Live probe with two canary tenants", not offenders, offenders)


async def check_consistency(conn: AsyncConnection) -> CheckResult:
    """Every passage's owner is its document's owner; every storage key lies under its owner's prefix."""
    rows = (await conn.execute(text("select problem, item from audit_consistency()"))).all()
    offenders = [f"{problem}: {item}" for problem, item in rows]
    return CheckResult("Ownership is consistent", not offenders, offenders)


STORAGE_CHECK = "Storage matches the database"


async def storage_problems(
    conn: AsyncConnection, storage: Storage, keys: list[str] | None = None, *, admin: User | None = None
) -> list[tuple[str, str]]:
    """(problem, item) for every stored object under `users/` that no user or no document claims, and
    every document whose object is gone. The database sees only the keys it is given; it answers with
    those keys and document ids, never another tenant's metadata — and only on the admin path, for
    `admin` (None: the operator at the command line), with an `admin.read` entry in the audit log.
    List the keys before a transaction is open (`keys`), so a long listing holds no database
    snapshot."""
    if keys is None:
        keys = await storage.list_keys(USERS_PREFIX)
    rows = await admin_rows(conn, admin, "select problem, item from audit_storage(:keys)", {"keys": keys})
    return [(problem, item) for problem, item in rows]


async def check_storage(
    conn: AsyncConnection, storage: Storage, keys: list[str] | None = None, *, admin: User | None = None
) -> CheckResult:
    problems = await storage_problems(conn, storage, keys, admin=admin)
    offenders = [f"{problem}: {item}" for problem, item in problems]
    return CheckResult(STORAGE_CHECK, not offenders, offenders)


async def run_audit(
    conn: AsyncConnection, *, app_role: str, storage: Storage, admin: User | None = None
) -> list[CheckResult]:
    """Every check, on behalf of `admin` (None: the operator); the live probe's canaries are rolled
    back whatever happens. The stored files are listed first, before the checks open a transaction."""
    own_transaction = not conn.in_transaction()
    try:
        keys: list[str] | None = await storage.list_keys(USERS_PREFIX)
        listing_error = None
    except Exception as exc:  # storage that cannot be listed fails the check, with the reason
        keys, listing_error = None, exc
    results = await catalog_checks(conn, app_role=app_role)
    results.append(await check_consistency(conn))
    if listing_error is None:
        results.append(await check_storage(conn, storage, keys, admin=admin))
        if own_transaction:
            await conn.commit()  # keeps the storage check's admin.read entry; the checks so far only read
    else:
        results.append(
            CheckResult(STORAGE_CHECK, False, [f"could not list the stored files: {listing_error}"])
        )
    transaction = await conn.begin_nested() if conn.in_transaction() else await conn.begin()
    try:
        results.append(await check_live_probe(conn))
    except Exception as exc:  # a probe that cannot even run is a failed check, with the reason
        results.append(CheckResult("Live probe with two canary tenants", False, [f"could not run: {exc}"]))
    finally:
        await transaction.rollback()
    return results
