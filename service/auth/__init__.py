"""API keys: creation, hashed storage, scopes, revocation."""
