"""Scores: computed, stored, kept fresh, explained and served."""
