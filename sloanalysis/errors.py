"""The one exception family for errors a user can cause.

CLIs catch :class:`UserError`, print its message on one line and exit with status 2.
Messages name the file, field or position at fault.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: a scenario, a PromQL expression, a rules file, an unreachable server."""


class DataError(UserError):
    """A data file (run directory, Parquet, OpenMetrics, series notation) is malformed."""
