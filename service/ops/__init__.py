"""Operations: health probes, Prometheus metrics, request context."""
