"""Every table, imported in one place so the metadata is complete for Alembic and erasure."""

from service.auth.models import ApiKey
from service.customers.models import CustomerAttributes
from service.events.models import Event
from service.jobs.models import PendingEvent
from service.portrait.models import CustomerDay, CustomerProduct, Product

__all__ = [
    "ApiKey",
    "CustomerAttributes",
    "CustomerDay",
    "CustomerProduct",
    "Event",
    "PendingEvent",
    "Product",
]
