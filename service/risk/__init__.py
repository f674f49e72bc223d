"""Risk flags: anomalies in a customer's recent behaviour, for the profile and the score."""
