"""Audiences: saved filters over the stored scores, their members, counts and thresholds."""
