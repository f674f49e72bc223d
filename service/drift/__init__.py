"""Drift monitoring: the champion's training population against the customers it scores now."""
