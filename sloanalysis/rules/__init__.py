"""Prometheus rule files: the reader, templates, rule-manager semantics, backtests, scoring, tuning,
promtool unit tests and lint."""
