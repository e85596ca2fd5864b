"""SLO spec readers: which format a YAML document is, and the entry points that load files.

Formats, told apart by their version key (and ``kind``) in each document:

=============================================  ==========================================
``version: sloanalysis/v1``                    this project's (:mod:`.own`)
``version: prometheus/v1``                     Sloth (:mod:`.sloth`)
``apiVersion: sloth.slok.dev/v1``              Sloth's Kubernetes ``PrometheusServiceLevel``
``apiVersion: openslo/v1alpha``                Sloth's OpenSLO input (``kind: SLO``)
``apiVersion: pyrra.dev/v1alpha1``             Pyrra's ``ServiceLevelObjective`` (:mod:`.pyrra`)
``apiVersion: openslo/v1``                     OpenSLO v1 (:mod:`.openslo`), all documents at once
=============================================  ==========================================

A file with several YAML documents: OpenSLO v1 reads them together (an SLO references an SLI
of another document); the other tools' formats read each document on its own, as Sloth and
Pyrra do. The project's format is one document per file. Every period must be at least the
shortest alert window (:data:`MIN_PERIOD_MS`, 5 minutes): a one-minute period would generate
alerts over windows longer than the SLO itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sloanalysis.durations import format_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.files import read_input_text
from sloanalysis.slo.formats.openslo import OPENSLO_V1, parse_openslo
from sloanalysis.slo.formats.own import OWN_VERSION, parse_own
from sloanalysis.slo.formats.pyrra import PYRRA_VERSION, parse_pyrra
from sloanalysis.slo.formats.sloth import (
    K8S_VERSION,
    OPENSLO_ALPHA,
    PROMETHEUS_V1,
    parse_sloth,
    parse_sloth_k8s,
    parse_sloth_openslo,
)
from sloanalysis.slo.spec import DEFAULT_SLOTH_PERIOD_MS, SLO, SLOSpecError
from sloanalysis.yamlload import load_yaml_documents

__all__ = ["FORMATS", "MIN_PERIOD_MS", "SpecFormat", "load_slo_files", "load_slos", "parse_slos"]

MIN_PERIOD_MS = 5 * 60_000
"""The shortest alert window of every style (Sloth's 5m short window, the native floor)."""


@dataclass(frozen=True)
class SpecFormat:
    """One SLO file format, recognised by ``key: name`` (and ``kind`` when given) in a document.

    ``parse(documents, source, default_period_ms)`` validates the documents (mappings) and
    returns their SLOs. ``together``: all documents of the file go to one call (OpenSLO v1);
    otherwise each document is read alone. ``style``: the rule style its SLOs generate by default.
    """

    name: str
    key: str
    parse: Callable[[list[Any], str, int], list[SLO]]
    kind: str | None = None
    together: bool = False
    style: str = "native"

    def matches(self, doc: dict[Any, Any]) -> bool:
        return doc.get(self.key) == self.name and (self.kind is None or doc.get("kind") == self.kind)

    def describe(self) -> str:
        return f"{self.key}: {self.name}" + (f" (kind: {self.kind})" if self.kind else "")


FORMATS: tuple[SpecFormat, ...] = (
    SpecFormat(OWN_VERSION, "version", parse_own),
    SpecFormat(PROMETHEUS_V1, "version", parse_sloth, style="sloth"),
    SpecFormat(K8S_VERSION, "apiVersion", parse_sloth_k8s, kind="PrometheusServiceLevel", style="sloth"),
    SpecFormat(OPENSLO_ALPHA, "apiVersion", parse_sloth_openslo, kind="SLO", style="sloth"),
    SpecFormat(PYRRA_VERSION, "apiVersion", parse_pyrra, kind="ServiceLevelObjective", style="pyrra"),
    SpecFormat(OPENSLO_V1, "apiVersion", parse_openslo, together=True),
)

DEFAULT_STYLES = {f.name: f.style for f in FORMATS}
"""The rule style each format's SLOs generate unless ``--style`` says otherwise."""


def _format_of(doc: Any, source: str, index: int, count: int) -> SpecFormat:
    where = f"{source}: document {index + 1}" if count > 1 else source
    if not isinstance(doc, dict):
        raise SLOSpecError(f"{where}: expected a mapping at the top, got {type(doc).__name__}")
    for fmt in FORMATS:
        if fmt.matches(doc):
            return fmt
    key = "apiVersion" if "apiVersion" in doc else "version"
    got = f"{key}: {doc.get(key)!r}" + (f", kind: {doc['kind']!r}" if "kind" in doc else "")
    known = "; ".join(f.describe() for f in FORMATS)
    raise SLOSpecError(f"{where}: unknown SLO format ({got}); supported: {known}")


def _yaml_documents(text: str, source: str) -> list[Any]:
    try:
        docs = [d for d in load_yaml_documents(text, source) if d is not None]
    except UserError as exc:
        raise SLOSpecError(str(exc)) from None
    if not docs:
        raise SLOSpecError(f"{source}: empty file, no SLOs")
    return docs


def _check_period(slo: SLO) -> None:
    if slo.period_ms < MIN_PERIOD_MS:
        raise SLOSpecError(
            f"{slo.source}: SLO {slo.name!r}: period {format_duration_ms(slo.period_ms)} is shorter than"
            f" the shortest alert window {format_duration_ms(MIN_PERIOD_MS)}"
        )


def _parse_documents(docs: list[Any], source: str, default_period_ms: int) -> list[SLO]:
    formats = [_format_of(d, source, i, len(docs)) for i, d in enumerate(docs)]
    first = formats[0]
    if first.together:
        return first.parse(docs, source, default_period_ms)
    slos: list[SLO] = []
    for i, (doc, fmt) in enumerate(zip(docs, formats, strict=True)):
        if fmt.together or (fmt.name == OWN_VERSION and len(docs) > 1):
            raise SLOSpecError(
                f"{source}: document {i + 1}: {fmt.describe()} cannot share a file with other documents"
            )
        where = f"{source}: document {i + 1}" if len(docs) > 1 else source
        slos.extend(fmt.parse([doc], where, default_period_ms))
    return slos


def parse_slos(
    text: str, source: str = "<string>", *, default_period_ms: int = DEFAULT_SLOTH_PERIOD_MS
) -> list[SLO]:
    """All SLOs of a YAML text in any of the :data:`FORMATS`; ``source`` names it in errors."""
    slos = _parse_documents(_yaml_documents(text, source), source, default_period_ms)
    seen: set[str] = set()
    for slo in slos:
        _check_period(slo)
        if slo.id in seen:
            raise SLOSpecError(f"{source}: SLO {slo.name!r} of service {slo.service!r} defined twice")
        seen.add(slo.id)
    return slos


def load_slos(path: str | Path, *, default_period_ms: int = DEFAULT_SLOTH_PERIOD_MS) -> list[SLO]:
    """Read and validate an SLO file (any of the :data:`FORMATS`)."""
    text = read_input_text(path, SLOSpecError)
    return parse_slos(text, str(Path(path)), default_period_ms=default_period_ms)


def load_slo_files(
    paths: Sequence[str | Path], default_period_ms: int = DEFAULT_SLOTH_PERIOD_MS
) -> list[SLO]:
    """SLOs of every file in order; an SLO id defined in two files is an error naming both."""
    slos: list[SLO] = []
    seen: dict[str, str] = {}
    for path in paths:
        for slo in load_slos(path, default_period_ms=default_period_ms):
            if slo.id in seen:
                raise SLOSpecError(f"{path}: SLO {slo.id!r} is already defined in {seen[slo.id]}")
            seen[slo.id] = str(path)
            slos.append(slo)
    return slos
