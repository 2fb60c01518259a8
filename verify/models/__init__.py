"""ORM models: the tables, and nothing else (business rules live in verify/domain).

One module per area; every module is imported here so that ``Base.metadata`` holds every table.
Alembic migrations in migrations/ are the schema's source of truth; a test checks these models match.
"""

from verify.models import abuse, delivery, webhooks
from verify.models.core import (
    BIGINT_ID,
    Account,
    ApiKey,
    Base,
    CheckAttempt,
    DestinationFailures,
    Event,
    SendAttempt,
    Service,
    TestNumber,
    UTCDateTime,
    Verification,
)

__all__ = [
    "BIGINT_ID",
    "Account",
    "ApiKey",
    "Base",
    "CheckAttempt",
    "DestinationFailures",
    "Event",
    "SendAttempt",
    "Service",
    "TestNumber",
    "UTCDateTime",
    "Verification",
    "abuse",
    "delivery",
    "webhooks",
]
