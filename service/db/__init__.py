"""Database plumbing: declarative base, portable column types, engines and migrations."""
