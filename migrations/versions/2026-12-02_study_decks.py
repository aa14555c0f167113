"""Flashcard decks, their cards with an FSRS schedule, and each review given.

Three tenant tables, like the others: row-level security forced, the policy on `app.user_id`, and
each row tied to its parent's owner by a composite key — a deck to (documents.id, user_id), a card to
(decks.id, user_id), a review to (cards.id, user_id) — so no row can ever point into another user's
data. Deleting a book deletes its decks, their cards and reviews.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.config import get_settings

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = get_settings().app_db_role
CURRENT_USER = "nullif(current_setting('app.user_id', true), '')::uuid"
TABLES = ("decks", "cards", "reviews")


def _id() -> sa.Column:
    return sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False)


def _owned_by(table: str, parent: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column, "user_id"],
        [f"{parent}.id", f"{parent}.user_id"],
        name=f"fk_{table}_{column}_user_id_{parent}",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "decks",
        _id(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("chapter", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("made_by", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_decks_user_id_users", ondelete="CASCADE"),
        _owned_by("decks", "documents", "document_id"),
        sa.PrimaryKeyConstraint("id", name="pk_decks"),
        sa.UniqueConstraint("id", "user_id", name="uq_decks_id_user_id"),
    )
    op.create_index("ix_decks_user_id_created_at", "decks", ["user_id", "created_at"])
    op.create_table(
        "cards",
        _id(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("deck_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("front", sa.Text(), nullable=False),
        sa.Column("back", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("quote", sa.Text(), nullable=False),
        sa.Column("schedule", postgresql.JSONB(), nullable=True),
        sa.Column("due", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("reviews", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        _owned_by("cards", "decks", "deck_id"),
        sa.CheckConstraint("kind in ('definition', 'term', 'cloze', 'question')", name=op.f("ck_cards_kind")),
        sa.PrimaryKeyConstraint("id", name="pk_cards"),
        sa.UniqueConstraint("id", "user_id", name="uq_cards_id_user_id"),
    )
    op.create_index("ix_cards_deck_id_position", "cards", ["deck_id", "position"])
    op.create_index("ix_cards_user_id_due", "cards", ["user_id", "due"])
    op.create_table(
        "reviews",
        _id(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("card_id", sa.Uuid(), nullable=False),
        sa.Column("grade", sa.SmallInteger(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due", sa.DateTime(timezone=True), nullable=False),
        _owned_by("reviews", "cards", "card_id"),
        sa.CheckConstraint("grade between 1 and 4", name=op.f("ck_reviews_grade")),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
    )
    op.create_index("ix_reviews_user_id_reviewed_at", "reviews", ["user_id", "reviewed_at"])
    for table in TABLES:
        op.execute(f"alter table {table} enable row level security")
        op.execute(f"alter table {table} force row level security")
        op.execute(
            f"create policy tenant_isolation on {table} "
            f"using (user_id = {CURRENT_USER}) with check (user_id = {CURRENT_USER})"
        )
    op.execute(f'grant select, insert, update, delete on decks, cards to "{APP_ROLE}"')
    op.execute(f'grant select, insert on reviews to "{APP_ROLE}"')


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f'revoke all on {table} from "{APP_ROLE}"')
        op.drop_table(table)
