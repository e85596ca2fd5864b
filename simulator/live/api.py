"""The payout API's contract: request bodies, TRON addresses and API keys.

* Bodies: ``amount_usdt`` (a JSON number > 0, at most 1,000,000, cents), ``router_type``
  (``v0``/``kyc``), ``priority`` (``normal``/``high``, default ``normal``) and ``recipient`` (a
  TRON base58check address). Strict types: ``"12"`` is not a number, ``true`` is not 1.
  Integer literals longer than 19 characters are read as floats (a 310-digit amount is infinite, so
  out of range: 422, not an overflow). The service refuses amounts above its hourly limit too.
* API keys are ``tk_<role>_<n>_<secret>``; the ``tk_<role>_`` prefix names the role (as Stripe's
  ``sk_live_`` does). A key is found by the SHA-256 of the whole key (exact: two keys sharing a
  prefix are two keys) and confirmed with :func:`hmac.compare_digest`; the service holds only
  the digests.
* Payout ids are ``po_`` and ASCII digits (``po_²`` is not one: 404).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.scenario import PRIORITIES, ROLES, ROUTER_TYPES
from sloanalysis.errors import UserError
from sloanalysis.files import atomic_write_text

MAX_BODY_BYTES = 16 * 1024
MAX_AMOUNT = 1_000_000.0
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
TRON_PREFIX = 0x41  # mainnet addresses: 0x41 + 20-byte account id, base58check, 34 characters


# -- TRON addresses --------------------------------------------------------------------------
def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]


def encode_address(account: bytes) -> str:
    """The base58check address of a 20-byte account id (``T...``, 34 characters)."""
    if len(account) != 20:
        raise ValueError("a TRON account id has 20 bytes")
    raw = bytes([TRON_PREFIX]) + account
    n = int.from_bytes(raw + _checksum(raw), "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return out


def valid_address(text: str) -> bool:
    if len(text) != 34 or text[0] != "T":
        return False
    n = 0
    for c in text:
        digit = _B58_INDEX.get(c)
        if digit is None:
            return False
        n = n * 58 + digit
    try:
        raw = n.to_bytes(25, "big")
    except OverflowError:
        return False
    return raw[0] == TRON_PREFIX and hmac.compare_digest(_checksum(raw[:21]), raw[21:])


# -- payout bodies ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PayoutBody:
    amount: float
    router: str
    priority: str
    recipient: str


class BodyError(Exception):
    """An invalid body: ``detail`` is FastAPI-like ``[{loc, msg, type}]``; ``labels`` holds
    router_type and priority when those two were valid (the payout is then counted as rejected)."""

    def __init__(self, detail: list[dict[str, Any]], labels: tuple[str, str] | None = None) -> None:
        super().__init__(detail[0]["msg"])
        self.detail = detail
        self.labels = labels


def _err(field: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", field] if field else ["body"], "msg": msg, "type": kind}


def _bounded_int(text: str) -> int | float:
    """JSON integers of up to 19 characters as ints; longer ones as floats (inf beyond 1e308), so
    that no huge int reaches float conversion or Python's 4300-digit int parsing limit."""
    return int(text) if len(text) <= 19 else float(text)


def parse_payout(raw: bytes) -> PayoutBody:
    """Decode and validate a payout body; raises :class:`BodyError`."""
    try:
        data = json.loads(raw, parse_int=_bounded_int)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BodyError([_err("", f"malformed JSON: {exc}"[:200], "json_invalid")]) from None
    if not isinstance(data, dict):
        raise BodyError([_err("", "expected a JSON object", "model_type")])
    errors: list[dict[str, Any]] = []
    unknown = sorted(set(data) - {"amount_usdt", "router_type", "priority", "recipient"})
    errors += [_err(k, "unknown field", "extra_forbidden") for k in unknown[:5]]
    router = data.get("router_type")
    if router not in ROUTER_TYPES:
        errors.append(_err("router_type", f"must be one of {', '.join(ROUTER_TYPES)}", "enum"))
    priority = data.get("priority", "normal")
    if priority not in PRIORITIES:
        errors.append(_err("priority", f"must be one of {', '.join(PRIORITIES)}", "enum"))
    labels = (router, priority) if router in ROUTER_TYPES and priority in PRIORITIES else None
    amount = data.get("amount_usdt")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        errors.append(_err("amount_usdt", "must be a number", "float_type"))
    elif not (math.isfinite(amount) and 0 < amount <= MAX_AMOUNT):
        errors.append(_err("amount_usdt", f"must be > 0 and at most {MAX_AMOUNT:,.0f}", "value_error"))
    elif round(amount, 2) != amount:
        errors.append(_err("amount_usdt", "at most two decimal places (cents)", "value_error"))
    recipient = data.get("recipient")
    if not isinstance(recipient, str):
        errors.append(_err("recipient", "must be a string", "string_type"))
    elif not valid_address(recipient):
        errors.append(
            _err("recipient", "not a TRON base58check address (T..., 34 characters)", "value_error")
        )
    if errors:
        raise BodyError(errors, labels)
    assert isinstance(router, str) and isinstance(priority, str) and isinstance(recipient, str)
    return PayoutBody(float(amount), router, priority, recipient)  # type: ignore[arg-type]


# -- API keys ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Principal:
    role: str
    client: int

    @property
    def user_id(self) -> str:
        return f"{self.role}-{self.client}"


class KeyRing:
    """Known keys by the SHA-256 of the whole key: exact, and no key is held in memory."""

    def __init__(self, keys: dict[str, list[str]]) -> None:
        self._by_digest: dict[bytes, tuple[Principal, bytes]] = {}
        for role, role_keys in keys.items():
            for client, key in enumerate(role_keys):
                if not KEY_FORMAT.fullmatch(key) or not key.startswith(f"tk_{role}_"):
                    raise UserError(f"API key {client} of role {role!r}: expected tk_{role}_<n>_<secret>")
                digest = _digest(key)
                if digest in self._by_digest:
                    raise UserError(f"API key {client} of role {role!r}: the same key is listed twice")
                self._by_digest[digest] = (Principal(role, client), digest)

    def authenticate(self, presented: str | None) -> Principal | None:
        if not presented:
            return None
        digest = _digest(presented)
        principal, expected = self._by_digest.get(digest, (None, _DUMMY))
        # The dictionary finds the candidate by digest (which tells an attacker nothing about any
        # key); the constant-time comparison is the check, done on the miss path too.
        ok = hmac.compare_digest(digest, expected)
        return principal if ok else None


KEY_FORMAT = re.compile(r"tk_[a-z]+_[0-9]+_[A-Za-z0-9_-]{8,}")
_DUMMY = hashlib.sha256(b"no such key").digest()


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


PAYOUT_ID = re.compile(r"po_([0-9]{1,12})", re.ASCII)


def parse_payout_id(text: str) -> int | None:
    """The number of a ``po_<digits>`` id (ASCII digits only), or None."""
    match = PAYOUT_ID.fullmatch(text)
    return int(match.group(1)) if match else None


def generate_keys(per_role: int) -> dict[str, list[str]]:
    return {
        role: [f"tk_{role}_{i}_{secrets.token_urlsafe(24).replace('_', 'x')}" for i in range(per_role)]
        for role in ROLES
    }


def load_or_create_keys(path: Path, per_role: int) -> dict[str, list[str]]:
    """Keys from ``path`` (JSON ``{role: [key, ...]}``), or new ones written there with mode 0600."""
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path}: cannot read API keys: {exc}") from None
        if not isinstance(data, dict) or set(data) != set(ROLES):
            raise UserError(f"{path}: expected a JSON object with the roles {', '.join(ROLES)}")
        for role, keys in data.items():
            if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
                raise UserError(f"{path}: {role}: expected a non-empty list of key strings")
        return data
    keys = generate_keys(per_role)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(keys), mode=0o600)
    return keys
