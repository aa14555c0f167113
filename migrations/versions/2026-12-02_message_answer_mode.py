"""Each answer keeps how it was made (`messages.mode`: generated, extractive or not_found).

The chat page showed a refusal by recognising its fixed opening sentence; the mode is now stored with
the answer. Answers stored before this revision get theirs from what they hold: a refusal has no
sources and opens with "This is not in your library"; an extractive answer opens with the note that
no language model is configured; any other answer with sources was generated. What fits none of these
stays null (shown as an ordinary answer, as before).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MODE_CHECK = "mode is null or (role = 'assistant' and mode in ('generated', 'extractive', 'not_found'))"


def upgrade() -> None:
    op.add_column("messages", sa.Column("mode", sa.String(16), nullable=True))
    op.create_check_constraint(op.f("ck_messages_mode"), "messages", MODE_CHECK)
    # The owner is bound by the forced row-level security too (no tenant is set here, so no row would
    # match): it is lifted for this one statement, inside the migration's transaction.
    op.execute("alter table messages no force row level security")
    op.execute(
        """
        update messages set mode = case
            when sources = '[]'::jsonb and content like 'This is not in your library%' then 'not_found'
            when content like '*No language model is configured%' then 'extractive'
            when sources <> '[]'::jsonb then 'generated'
        end
        where role = 'assistant'
        """
    )
    op.execute("alter table messages force row level security")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_messages_mode"), "messages", type_="check")
    op.drop_column("messages", "mode")
