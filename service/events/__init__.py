"""Events: ingestion (validation, idempotent bulk storage, CSV import), the queue of stored
events not applied yet and its dead letters, and the worker that applies them."""
