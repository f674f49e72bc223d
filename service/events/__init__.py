"""Event ingestion: validation, idempotent bulk storage, CSV import."""
