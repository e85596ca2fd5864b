"""Embedded PromQL engine: ``promql-parser`` parses, numpy evaluates over all steps at once."""

from sloanalysis.promql.engine import Engine
from sloanalysis.promql.parse import PromQLError, parse
from sloanalysis.promql.result import QueryResult

__all__ = ["Engine", "PromQLError", "QueryResult", "parse"]
