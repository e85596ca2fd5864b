"""SLO reports: the data a report shows (:mod:`~sloanalysis.report.context`, over the types of
:mod:`~sloanalysis.report.model`), its plots and alert views, its gates, and the builder that
renders the notebooks (:mod:`~sloanalysis.report.build`).

A notebook's setup is one call: ``ctx = sloanalysis.report.notebook_context(globals())`` after its
parameters cell, or :func:`open_context` with keyword arguments from any code.
"""

from sloanalysis.report.context import (
    Context,
    find_project,
    header_markdown,
    html_table,
    incident_table,
    notebook_context,
    open_context,
    project_defaults,
    project_path,
)
from sloanalysis.report.model import Inputs

__all__ = [
    "Context",
    "Inputs",
    "find_project",
    "header_markdown",
    "html_table",
    "incident_table",
    "notebook_context",
    "open_context",
    "project_defaults",
    "project_path",
]
