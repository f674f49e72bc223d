"""Background work: the worker loop and the database queues it consumes."""
