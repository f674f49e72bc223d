"""Trained model versions: the registry (rows + artifact folders), aliases, promotion log."""
