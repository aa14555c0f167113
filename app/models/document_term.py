import uuid

from sqlalchemy import ForeignKeyConstraint, Index, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class DocumentTerm(Base):
    """How many passages of a document hold a full-text lexeme (Postgres' English stems, as in
    `chunks.tsv`). Written with the passages; the refusal's "terms found nowhere in the scope" sums
    these instead of reading every passage of the scope (app.chat.retrieval.absent_terms)."""

    __tablename__ = "document_terms"
    __table_args__ = (
        ForeignKeyConstraint(
            ["document_id", "user_id"], ["documents.id", "documents.user_id"], ondelete="CASCADE"
        ),
        Index("ix_document_terms_user_id_lexeme", "user_id", "lexeme"),
    )

    document_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    lexeme: Mapped[str] = mapped_column(Text, primary_key=True)
    user_id: Mapped[uuid.UUID]
    passages: Mapped[int] = mapped_column(Integer)


def term_counts_sql(where: str) -> str:
    """The statement that writes the term counts of the passages `where` (a condition on `chunks c`)
    selects: ingestion for one document, bench/retrieval.py for a whole built library."""
    return (
        "insert into document_terms (document_id, lexeme, user_id, passages)"
        " select c.document_id, lexeme, c.user_id, count(*)"
        f" from chunks c, unnest(tsvector_to_array(c.tsv)) lexeme where {where}"
        " group by c.document_id, lexeme, c.user_id"
    )
