"""Configuration files validated with pydantic, errors as one line naming the file and the field.

:func:`validate` runs a model over parsed YAML/JSON and turns the first
:class:`~pydantic.ValidationError` into a :class:`~sloanalysis.errors.UserError` such as
``slos.yaml: slos[0].objective: objective must lie in (0, 1) exclusive, got 1.0``.
Validators that check one field from a parent (a threshold against the objective) raise
:class:`FieldError` with the path below the validated model, so the message still names the field.
"""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from sloanalysis.errors import UserError

__all__ = ["FieldError", "Loc", "field_path", "located", "null_is_absent", "validate", "validation_message"]

Loc = tuple[int | str, ...]
M = TypeVar("M", bound=BaseModel)

# Parts pydantic adds to a location that are not fields: validator wrappers
# (``function-after[...]``), union members (``list[int]``), dict key markers (``[key]``).
_NOT_A_FIELD = re.compile(r"^(?:[a-z][a-z_-]*\[.*\]|\[key\])$")


class FieldError(ValueError):
    """``message`` about the field at ``loc`` below the model whose validator raises it."""

    def __init__(self, loc: Sequence[int | str], message: str) -> None:
        super().__init__(message)
        self.loc: Loc = tuple(loc)
        self.message = message


def field_path(loc: Sequence[int | str]) -> str:
    """``("slos", 0, "objective")`` as ``slos[0].objective``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def located(source: str, loc: Sequence[int | str], message: str) -> str:
    """``source: path: message``, or ``source: message`` at the top level."""
    path = field_path(loc)
    return f"{source}: {path}: {message}" if path else f"{source}: {message}"


def null_is_absent(model: type[BaseModel], data: Any) -> Any:
    """``data`` without the fields of ``model`` set to null (YAML ``~``, JSON ``null``), so that null
    means "not given": the field's default, or "required field is missing"."""
    if not isinstance(data, dict):
        return data
    names = {f.alias or name for name, f in model.model_fields.items()}
    return {k: v for k, v in data.items() if not (v is None and k in names)}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation may hold, without ``Annotated``, ``Optional`` and unions."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class validating the value at ``loc`` below ``model``, None if it is not one."""
    current: list[Any] = [model]
    for part in loc:
        following: list[Any] = []
        for t in current:
            origin = get_origin(t)
            if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(part, str):
                if part in t.model_fields:
                    following.extend(_unwrap(t.model_fields[part].annotation))
            elif origin in (list, tuple) and isinstance(part, int):
                following.extend(_unwrap(get_args(t)[0]))
            elif origin is dict and isinstance(part, str):
                following.extend(_unwrap(get_args(t)[1]))
        current = following
    models = [t for t in current if isinstance(t, type) and issubclass(t, BaseModel)]
    return models[0] if models else None


def _message(err: Any, model: type[BaseModel] | None, loc: Loc) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1]) if model is not None else None
        if owner is None:
            return "unknown field"
        known = sorted(f.alias or name for name, f in owner.model_fields.items())
        return f"unknown field (known here: {', '.join(known)})"
    if kind == "missing":
        return "required field is missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping, got {type(value).__name__}"
    if kind == "list_type":
        return f"expected a list, got {type(value).__name__}"
    msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind.endswith(("_type", "_parsing")) or kind == "finite_number" or kind.startswith("literal"):
        msg = f"{msg}, got {_shown(value)}"
    return msg


def validation_message(
    exc: ValidationError, source: str, *, model: type[BaseModel] | None = None, prefix: Loc = ()
) -> str:
    """The first error of ``exc`` as ``source: field.path: message`` on one line.

    ``model`` (the validated class) lets an unknown field list the known ones; ``prefix`` is the
    path of the validated value inside the file (``("dashboard",)``, ``("document 2",)``).
    """
    err = exc.errors()[0]
    loc: Loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and _NOT_A_FIELD.match(p)))
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        return located(source, prefix + loc + cause.loc, cause.message.replace("\n", " "))
    return located(source, prefix + loc, _message(err, model, loc).replace("\n", " "))


def validate(
    model: type[M], data: Any, source: str, error: type[UserError] = UserError, *, prefix: Loc = ()
) -> M:
    """``model`` validated from ``data``; a failure raises ``error`` with one line (see above)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(validation_message(exc, source, model=model, prefix=prefix)) from None
