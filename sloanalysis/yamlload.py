"""The one way every YAML input is read (scenarios, sweeps, SLO specs, rule files, promtool tests).

PyYAML's safe loader, plus what a configuration reader needs and PyYAML does not do: a duplicate
key is an error (PyYAML keeps the last one silently, so half a scenario could be ignored), and
nesting is bounded (PyYAML recurses once per level: a document nested a thousand levels deep ends in
``RecursionError``). Errors are :class:`~sloanalysis.errors.UserError` lines naming the file, line
and column.

``load_yaml(text, source, schema="go")`` reads a file as Go's ``gopkg.in/yaml.v2`` does for the
Prometheus 2.42 tools (promtool unit-test files): only the first document is read (the rest is not
even parsed); scalars keep their text (:class:`GoScalar`), because a Go string field receives the
text of any scalar (``values: 0x10`` stays ``"0x10"``, not YAML 1.1's 16); ``~``, ``null``,
``Null``, ``NULL`` and the empty scalar are None; mappings (:class:`GoMap`) keep keys given twice
for the typed decoder to report, as yaml.v2's strict mode does. :func:`go_resolve` gives the
number or boolean yaml.v2 reads from a plain scalar for a numeric or boolean field.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from sloanalysis.errors import UserError
from sloanalysis.files import PathLike, read_input_text

__all__ = [
    "MAX_YAML_DEPTH",
    "GoList",
    "GoMap",
    "GoScalar",
    "compose_yaml",
    "go_resolve",
    "load_yaml",
    "load_yaml_documents",
]

# Deepest nesting of mappings and lists accepted; real configurations stay below 10.
MAX_YAML_DEPTH = 64


def _where(source: str, mark: Any) -> str:
    return f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source


class _Loader(yaml.SafeLoader):
    source = "<yaml>"
    check_duplicates = True

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise UserError(f"{_where(self.source, mark)}: nested more than {MAX_YAML_DEPTH} levels deep")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.MappingNode) and self.check_duplicates:
            _check_duplicates(node, self.source)
        return node


def _check_duplicates(node: yaml.MappingNode, source: str) -> None:
    first: dict[str, Any] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        if key.value in first:
            line = first[key.value].line + 1
            raise UserError(
                f"{_where(source, key.start_mark)}: duplicate key {key.value!r} (first given on line {line})"
            )
        first[key.value] = key.start_mark


def _loader(text: str, source: str, *, check_duplicates: bool = True) -> _Loader:
    loader = _Loader(text)
    loader.source = source
    loader.check_duplicates = check_duplicates
    return loader


def _syntax_error(exc: yaml.YAMLError, source: str) -> UserError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return UserError(f"{_where(source, mark)}: invalid YAML: {problem}")


def load_yaml(text: str, source: str, schema: str = "yaml") -> Any:
    """The single document in ``text`` as Python data (None for an empty document); with
    ``schema="go"`` the first document as Go's yaml.v2 reads it (see the module docstring)."""
    if schema == "go":
        node = compose_yaml(text, source, first_document=True, check_duplicates=False)
        return None if node is None else _go_value(node, 0)
    if schema != "yaml":
        raise ValueError(f"unknown YAML schema {schema!r}")
    loader = _loader(text, source)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, source) from None
    finally:
        loader.dispose()


def load_yaml_file(path: PathLike, error: type[UserError] = UserError) -> Any:
    """The one document of a YAML file; an unreadable file or bad YAML raises ``error`` (the
    input's own error class) in one line naming the file."""
    text = read_input_text(path, error)
    try:
        return load_yaml(text, str(path))
    except UserError as exc:
        raise error(str(exc)) from None


def load_yaml_documents(text: str, source: str) -> list[Any]:
    """Every document in ``text`` (``---`` separated), empty ones included as None."""
    loader = _loader(text, source)
    try:
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
        return docs
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, source) from None
    finally:
        loader.dispose()


def compose_yaml(
    text: str, source: str, *, first_document: bool = False, check_duplicates: bool = True
) -> yaml.Node | None:
    """The node tree of the single document in ``text`` (line numbers kept), for readers that report
    positions the way promtool does. ``first_document``: read the first document and ignore the
    rest, as Go's yaml decoders (v2 ``Unmarshal``, v3 ``Decoder.Decode``) do."""
    loader = _loader(text, source, check_duplicates=check_duplicates)
    try:
        if first_document:
            return loader.get_node() if loader.check_node() else None
        return loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, source) from None
    finally:
        loader.dispose()


# -- Go's yaml.v2 -------------------------------------------------------------------------------


class GoScalar(str):
    """A scalar's text as a Go string field receives it; ``plain`` when unquoted (only plain
    scalars resolve to numbers or booleans), ``tag`` an explicit tag (``!!str``) or "", ``line``
    1-based."""

    plain: bool
    tag: str
    line: int

    def __new__(cls, text: str, plain: bool = True, line: int = 0, tag: str = "") -> GoScalar:
        obj = super().__new__(cls, text)
        obj.plain, obj.line, obj.tag = plain, line, tag
        return obj


class GoMap(dict[GoScalar | Any, Any]):
    """A mapping (first value of a repeated key kept); ``repeated`` the keys given again, ``line``
    1-based."""

    line: int = 0
    repeated: list[Any]


class GoList(list[Any]):
    """A sequence; ``line`` 1-based."""

    line: int = 0


_GO_NULLS = {"", "~", "null", "Null", "NULL"}
_GO_BOOLS = {
    **dict.fromkeys(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"], True),
    **dict.fromkeys(["n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"], False),
}
_GO_SPECIAL_FLOATS = {
    **dict.fromkeys([".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"], math.inf),
    **dict.fromkeys(["-.inf", "-.Inf", "-.INF"], -math.inf),
    **dict.fromkeys([".nan", ".NaN", ".NAN"], math.nan),
}
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
# Go's strconv.ParseInt(s, 0, 64): a sign, then 0x/0o/0b, a leading 0 (octal) or decimal digits.
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")


def _go_int(text: str) -> int | None:
    m = _GO_INT.fullmatch(text)
    if m is None:
        return None
    sign, digits = m.groups()
    if digits[:1] == "0" and digits[1:2] in ("x", "X", "o", "O", "b", "B"):
        value = int(digits[2:], {"x": 16, "o": 8, "b": 2}[digits[1].lower()])
    else:
        value = int(digits, 8 if digits[:1] == "0" else 10)
    value = -value if sign == "-" else value
    return value if -(2**63) <= value < 2**64 else None


def go_resolve(scalar: GoScalar | None) -> tuple[str, Any]:
    """yaml.v2's reading of a scalar: (``"!!null"``/``"!!bool"``/``"!!int"``/``"!!float"``/
    ``"!!str"``, value). Underscores are dropped from numbers (``1_0`` is 10), a leading 0 is
    octal, 0x/0o/0b are hexadecimal, octal and binary; timestamps are not resolved (no field
    of the files read this way takes one)."""
    if scalar is None:
        return "!!null", None
    text = str(scalar)
    if not scalar.plain or scalar.tag == "!!str":
        return "!!str", text
    if text in _GO_BOOLS:
        return "!!bool", _GO_BOOLS[text]
    if text in _GO_SPECIAL_FLOATS:
        return "!!float", _GO_SPECIAL_FLOATS[text]
    if text[:1] == ".":
        try:
            return "!!float", float(text)
        except ValueError:
            return "!!str", text
    if text[:1] in "+-0123456789":
        plain = text.replace("_", "")
        value = _go_int(plain)
        if value is not None:
            return "!!int", value
        if _GO_FLOAT.fullmatch(plain):
            return "!!float", float(plain)
    return "!!str", text


def _go_tag(node: yaml.Node) -> str:
    tag = node.tag or ""
    explicit = tag.startswith("tag:yaml.org,2002:") and not getattr(node, "implicit", (True, True))[0]
    return "!!" + tag.rsplit(":", 1)[1] if explicit else ""


def _go_value(node: yaml.Node, depth: int) -> Any:
    if depth > MAX_YAML_DEPTH:  # aliases can nest a document deeper than its text
        raise UserError(f"line {node.start_mark.line + 1}: nested more than {MAX_YAML_DEPTH} levels deep")
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        plain = node.style is None
        if plain and node.value in _GO_NULLS and _go_tag(node) in ("", "!!null"):
            return None
        return GoScalar(node.value, plain, line, _go_tag(node))
    if isinstance(node, yaml.SequenceNode):
        seq = GoList(_go_value(item, depth + 1) for item in node.value)
        seq.line = line
        return seq
    mapping = GoMap()
    mapping.line, mapping.repeated = line, []
    for k, v in node.value:
        key = _go_value(k, depth + 1)
        key = (
            key
            if key is None or isinstance(key, GoScalar)
            else GoScalar(f"<{type(key).__name__}>", False, line)
        )
        if key in mapping:
            mapping.repeated.append(key)
        else:
            mapping[key] = _go_value(v, depth + 1)
    return mapping
