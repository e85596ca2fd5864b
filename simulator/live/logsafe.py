"""Diagnostics of the live service without secrets: every log record passes a redacting filter.

aiohttp logs a request it cannot parse with a traceback whose message quotes the offending
header line (``X-API-Key: tk_..._<secret>\\rX: 1``). :func:`install` puts one handler on the
root logger whose filter, for every record of any logger,

* drops the traceback of HTTP parsing errors (one line names the exception class instead) and
  renders any other traceback itself, so that the text can be redacted;
* replaces the secret part of anything shaped like an API key, and whatever follows an
  ``X-API-Key`` header name, with ``[redacted]``.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from typing import IO

REDACTED = "[redacted]"
_KEY = re.compile(r"(tk_[A-Za-z]+_[0-9]+_)[A-Za-z0-9_-]+")
_HEADER = re.compile(r"(x-api-key\s*[:=]\s*)[^\s'\"\\]+(?:\\r[^\s'\"\\]*)?", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` without API key secrets or X-API-Key header values."""
    return _HEADER.sub(r"\1" + REDACTED, _KEY.sub(r"\1" + REDACTED, text))


def _is_parse_error(exc: BaseException | None) -> bool:
    from aiohttp.http_exceptions import HttpProcessingError

    return isinstance(exc, HttpProcessingError)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if _is_parse_error(exc):
                detail = f"{type(exc).__name__} (HTTP {getattr(exc, 'code', 400)}; request not shown)"
            else:
                detail = "".join(traceback.format_exception(exc)).rstrip()
            message = f"{message}: {detail}"
        record.msg, record.args = redact(message), None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def install(stream: IO[str] | None = None, level: int = logging.WARNING) -> logging.Handler:
    """Route all logging through one redacting handler on ``stream`` (standard error)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_tronsim_redacting", False):
            root.removeHandler(old)
    handler._tronsim_redacting = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler
