"""Training and backtesting over the event store (database I/O around service.ml)."""
