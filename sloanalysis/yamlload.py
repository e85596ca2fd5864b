"""The one way every YAML input is read (scenarios, sweeps, SLO specs, rule files, promtool tests).

PyYAML's safe loader, plus what a configuration reader needs and PyYAML does not do: a duplicate
key is an error (PyYAML keeps the last one silently, so half a scenario could be ignored), and
nesting is bounded (PyYAML recurses once per level: a document nested a thousand levels deep ends in
``RecursionError``). Errors are :class:`~sloanalysis.errors.UserError` lines naming the file, line
and column.
"""

from __future__ import annotations

from typing import Any

import yaml

from sloanalysis.errors import UserError

__all__ = ["MAX_YAML_DEPTH", "compose_yaml", "load_yaml", "load_yaml_documents"]

# Deepest nesting of mappings and lists accepted; real configurations stay below 10.
MAX_YAML_DEPTH = 64


def _where(source: str, mark: Any) -> str:
    return f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source


class _Loader(yaml.SafeLoader):
    source = "<yaml>"

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
        if isinstance(node, yaml.MappingNode):
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


def _loader(text: str, source: str) -> _Loader:
    loader = _Loader(text)
    loader.source = source
    return loader


def _syntax_error(exc: yaml.YAMLError, source: str) -> UserError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return UserError(f"{_where(source, mark)}: invalid YAML: {problem}")


def load_yaml(text: str, source: str) -> Any:
    """The single document in ``text`` as Python data (None for an empty document)."""
    loader = _loader(text, source)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, source) from None
    finally:
        loader.dispose()


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


def compose_yaml(text: str, source: str) -> yaml.Node | None:
    """The node tree of the single document in ``text`` (line numbers kept), for readers that report
    positions the way promtool does."""
    loader = _loader(text, source)
    try:
        return loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, source) from None
    finally:
        loader.dispose()
