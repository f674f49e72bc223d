"""Training, backtesting and batch scoring over the event store (database I/O around service.ml)."""
