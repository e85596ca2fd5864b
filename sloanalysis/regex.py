"""Prometheus's regular expressions: RE2 semantics, fully anchored.

Prometheus compiles a label matcher's or ``label_replace``'s pattern with Go's ``regexp`` (RE2
syntax and semantics) as ``^(?s:pattern)$`` since Prometheus 3 (``.`` matches a newline) and as
``^(?:pattern)$`` in 2.x. RE2 differs from Python's ``re`` where it matters for label values:
``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII only, and backreferences and lookarounds are
rejected. :func:`compile_regex` is the one place that builds such a matcher, with the ``re2``
module (google-re2), plus fast paths for literals and alternations of literals.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import re2

from sloanalysis.errors import UserError

__all__ = ["InvalidRegexError", "PromRegex", "compile_regex", "compile_search"]


class InvalidRegexError(UserError):
    """A pattern RE2 (and so Prometheus) rejects; the message names the pattern."""


# Characters with a meaning in RE2 syntax; a pattern without any is a literal.
_META = re.compile(r"[\\.+*?()|\[\]{}^$]")
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the error is raised to the caller, not printed by the C++ library


@dataclass(frozen=True)
class PromRegex:
    """A compiled, anchored Prometheus regex. ``literals`` is set when the pattern is a plain
    string or an alternation of plain strings, matched without the regex engine."""

    pattern: str
    compiled: Any
    literals: frozenset[str] | None

    def fullmatch(self, value: str) -> bool:
        """Whether the whole of ``value`` matches (Prometheus's ``MatchString``)."""
        if self.literals is not None:
            return value in self.literals
        return self.match(value) is not None

    def match(self, value: str) -> Any:
        """The RE2 match object (groups for ``label_replace``) or None."""
        try:
            return self.compiled.match(value)
        except UnicodeEncodeError:  # invalid UTF-8 kept as surrogates: Go reads each bad byte as U+FFFD
            return self.compiled.match(_as_go_runes(value))


def _as_go_runes(value: str) -> str:
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _literal_alternatives(pattern: str) -> frozenset[str] | None:
    parts = pattern.split("|")
    if any(_META.search(p) for p in parts):
        return None
    return frozenset(parts)


def compile_search(pattern: str) -> Any:
    """An unanchored RE2 pattern (Go's ``regexp.MustCompile``, as promqltest's ``regex:``
    expectations use); ``.search(text)`` finds it anywhere. Raises :class:`InvalidRegexError`."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise InvalidRegexError(f"invalid regular expression {pattern!r}: {_detail(exc)}") from None


def _detail(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else exc
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)


@functools.lru_cache(maxsize=1024)
def compile_regex(pattern: str, *, dot_matches_newline: bool = True) -> PromRegex:
    """Compile ``pattern`` as Prometheus does: anchored at both ends, RE2 syntax.

    ``dot_matches_newline`` is Prometheus 3's ``(?s)``; pass False for Prometheus 2.x. Raises
    :class:`InvalidRegexError` (a UserError) naming the pattern when RE2 rejects it
    (backreferences such as ``(a)\\1``, lookarounds such as ``(?=a)``, unbalanced groups).
    """
    flags = "?s:" if dot_matches_newline else "?:"
    try:
        # The bare pattern first: `a)|(b` is invalid alone but balanced once wrapped.
        re2.compile(pattern, _OPTIONS)
        compiled = re2.compile(f"^({flags}{pattern})$", _OPTIONS)
    except re2.error as exc:
        raise InvalidRegexError(f"invalid regular expression {pattern!r}: {_detail(exc)}") from None
    return PromRegex(pattern, compiled, _literal_alternatives(pattern))
