"""Customers: attributes from several sources, the merged profile, activity, erasure."""
