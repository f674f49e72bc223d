"""A synthetic storefront with a known truth, for honest accuracy measurements (clv simulate)."""
