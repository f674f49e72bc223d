"""Dead letters: stored events the worker could not apply, for an operator to retry or drop."""
