"""Decode a Go-schema YAML tree (:func:`sloanalysis.yamlload.load_yaml` with ``schema="go"``) into
typed fields as ``yaml.UnmarshalStrict`` of gopkg.in/yaml.v2 does, with its error messages.

A type is one of ``"string"``, ``"float64"``, ``"bool"``, ``"duration"`` (Prometheus's
``model.Duration``), ``"map[string]string"``, a :class:`Slice` or a :class:`Struct`. Type mismatches,
unknown and repeated fields are collected (yaml.v2 reports them all, in document order, as
``yaml: unmarshal errors:`` lines); a malformed duration stops decoding at once, as its
``UnmarshalYAML`` error does in Go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sloanalysis.durations import parse_prometheus_duration
from sloanalysis.errors import UserError
from sloanalysis.yamlload import GoList, GoMap, GoScalar, go_resolve

__all__ = ["DecodeError", "Slice", "Struct", "decode"]


@dataclass(frozen=True)
class Struct:
    """A Go struct: its type name as Go prints it (``main.testGroup``) and its YAML fields."""

    name: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class Slice:
    """A Go slice of ``elem``."""

    elem: Any

    @property
    def name(self) -> str:
        return "[]" + _type_name(self.elem)


class DecodeError(Exception):
    """The text Go's decoder returns for the document."""


def _go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def _type_name(typ: Any) -> str:
    return typ.name if isinstance(typ, (Struct, Slice)) else str(typ).replace("duration", "string")


class _Decoder:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def type_error(self, value: Any, typ: Any) -> None:
        if isinstance(value, GoMap):
            what, line = "!!map", value.line
        elif isinstance(value, GoList):
            what, line = "!!seq", value.line
        else:
            tag, _ = go_resolve(value)
            text = str(value)
            text = text[:7] + "..." if len(text) > 10 else text
            what, line = f"{value.tag or tag} `{text}`", value.line
        self.errors.append(f"line {line}: cannot unmarshal {what} into {_type_name(typ)}")

    def decode(self, value: Any, typ: Any) -> Any:
        if isinstance(typ, Struct):
            return self.struct(value, typ)
        if isinstance(typ, Slice):
            return self.sequence(value, typ)
        if typ == "map[string]string":
            return self.string_map(value, typ)
        if typ == "duration":
            text = self.decode(value, "string")
            try:
                return parse_prometheus_duration(text, what="duration") if text else 0
            except UserError:
                raise DecodeError(f"not a valid duration string: {_go_quote(text)}") from None
        if value is None:
            return {"string": "", "float64": 0.0, "bool": False}[typ]
        if not isinstance(value, GoScalar):
            self.type_error(value, typ)
            return {"string": "", "float64": 0.0, "bool": False}[typ]
        if typ == "string":
            return str(value)
        tag, resolved = go_resolve(value)
        if typ == "float64" and tag in ("!!int", "!!float"):
            return float(resolved)
        if typ == "bool" and tag == "!!bool":
            return bool(resolved)
        self.type_error(value, typ)
        return 0.0 if typ == "float64" else False

    def sequence(self, value: Any, typ: Slice) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, GoList):
            self.type_error(value, typ)
            return []
        return [self.decode(item, typ.elem) for item in value]

    def string_map(self, value: Any, typ: str) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, GoMap):
            self.type_error(value, typ)
            return {}
        out: dict[str, str] = {}
        for k, v in value.items():
            out[self.decode(k, "string")] = self.decode(v, "string")
        for k in value.repeated:
            self.errors.append(f"line {k.line}: key {_go_quote(str(k))} already set in map")
        return out

    def struct(self, value: Any, typ: Struct) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, GoMap):
            self.type_error(value, typ)
            return {}
        out: dict[str, Any] = {}
        for k, v in value.items():
            name = str(k) if k is not None else ""
            if name not in typ.fields:
                line = k.line if isinstance(k, GoScalar) else value.line
                self.errors.append(f"line {line}: field {name} not found in type {typ.name}")
                continue
            out[name] = self.decode(v, typ.fields[name])
        for k in value.repeated:
            self.errors.append(f"line {k.line}: field {k} already set in type {typ.name}")
        return out


def decode(value: Any, typ: Any) -> Any:
    """``value`` decoded as ``typ``; raises :class:`DecodeError` with Go's message."""
    decoder = _Decoder()
    out = decoder.decode(value, typ)
    if decoder.errors:
        raise DecodeError("yaml: unmarshal errors:\n  " + "\n  ".join(decoder.errors))
    return out
