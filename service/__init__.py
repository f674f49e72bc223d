"""clv-service: customer lifetime value predictions, explained and kept current, over REST."""

__version__ = "0.1.0"
