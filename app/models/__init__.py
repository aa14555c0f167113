"""Every table, imported here so Alembic sees them all."""

from app.models.audit_log import AuditLog
from app.models.chunk import Chunk
from app.models.conversation import Conversation, Message
from app.models.document import DOCUMENT_STATUSES, Document
from app.models.document_term import DocumentTerm
from app.models.isolation_run import IsolationAuditRun
from app.models.revoked_token import RevokedToken
from app.models.study import CARD_KINDS, Card, Deck, Review
from app.models.usage import UsageMonth
from app.models.user import User

# Tables whose rows belong to one user: each has `user_id` and a row-level security policy on it.
TENANT_TABLES = (
    "documents",
    "chunks",
    "document_terms",
    "conversations",
    "messages",
    "audit_log",
    "usage_months",
    "decks",
    "cards",
    "reviews",
)

__all__ = [
    "CARD_KINDS",
    "DOCUMENT_STATUSES",
    "TENANT_TABLES",
    "AuditLog",
    "Card",
    "Chunk",
    "Conversation",
    "Deck",
    "Document",
    "DocumentTerm",
    "IsolationAuditRun",
    "Message",
    "Review",
    "RevokedToken",
    "UsageMonth",
    "User",
]
