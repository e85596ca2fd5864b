"""Data sources: run directories, OpenMetrics files, a real Prometheus, test notations."""
