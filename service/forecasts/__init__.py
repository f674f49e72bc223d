"""Forecasts of the shop's revenue and orders over time: existing customers bottom-up from their
stored scores, customers not acquired yet from a time-series model of acquisitions."""
