"""Reading samples out of a ``/metrics`` scrape with the client library's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def sample(scrape: str, name: str, **labels: str) -> float:
    """The value of the sample with exactly these labels; 0 when absent (a counter that was
    never incremented is not exported yet)."""
    for family in text_string_to_metric_families(scrape):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0
