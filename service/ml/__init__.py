"""Modelling code with no web or database imports: runnable and testable as plain Python."""
