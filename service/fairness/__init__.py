"""Fairness audits: per protected attribute and group, how well the model serves each group
and how far apart the groups are, with and without the protected attributes."""
