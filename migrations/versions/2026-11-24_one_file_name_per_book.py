"""One file of a given name per book (replaces the plain folder index).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_documents_user_id_semester_subject_book", table_name="documents")
    op.create_unique_constraint(
        op.f("uq_documents_user_id_semester_subject_book_filename"),
        "documents",
        ["user_id", "semester", "subject", "book", "filename"],
    )


def downgrade() -> None:
    name = op.f("uq_documents_user_id_semester_subject_book_filename")
    op.drop_constraint(name, "documents", type_="unique")
    op.create_index(
        "ix_documents_user_id_semester_subject_book", "documents", ["user_id", "semester", "subject", "book"]
    )
