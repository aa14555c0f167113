import uuid

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Computed,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class Chunk(Base):
    """A passage of a document with the pages it spans, its full-text vector and its embedding."""

    __tablename__ = "chunks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["document_id", "user_id"], ["documents.id", "documents.user_id"], ondelete="CASCADE"
        ),
        UniqueConstraint("document_id", "ordinal"),
        Index("ix_chunks_user_id_document_id", "user_id", "document_id"),
        # One HNSW index per bucket of tenants (migration 0011; app.chat.retrieval.TENANT_BUCKETS).
        *(
            Index(
                f"ix_chunks_embedding_hnsw_{bucket:02d}",
                "embedding",
                postgresql_using="hnsw",
                postgresql_ops={"embedding": "vector_cosine_ops"},
                postgresql_where=text(f"(get_byte(uuid_send(user_id), 15) % 16) = {bucket}"),
            )
            for bucket in range(16)
        ),
        Index("ix_chunks_tsv", "tsv", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[uuid.UUID]
    document_id: Mapped[uuid.UUID]
    ordinal: Mapped[int] = mapped_column(Integer)
    page_start: Mapped[int] = mapped_column(Integer)
    page_end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    # Where in `text` each following page begins: a quote's page is page_start + breaks before it.
    page_breaks: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list, server_default="{}")
    # Titles of the units page_start..page_end for formats whose units have names (empty for PDFs).
    sections: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    tsv: Mapped[str] = mapped_column(
        TSVECTOR, Computed("to_tsvector('english', text)", persisted=True), deferred=True
    )
    # Its dimension is the deployment's EMBEDDING_DIM, which the database column holds (set by the
    # migrations and `app.ingestion.dimension`); the model does not repeat it.
    embedding: Mapped[list[float] | None] = mapped_column(Vector())
