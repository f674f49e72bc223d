"""The customer portrait: activity aggregates kept current per batch, and features derived from
them as of any time (see service/ml/activity.py and service/ml/features.py)."""
