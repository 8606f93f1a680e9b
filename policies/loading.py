"""Turn YAML text into validated models, with every problem located by path and line.

Pure: callers pass text and a source name; reading files is the caller's job.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import InputError, InputIssue

M = TypeVar("M", bound=BaseModel)
Path = tuple[str | int, ...]


def parse_yaml(text: str, source: str) -> tuple[Any, dict[Path, int]]:
    """Parse one YAML document; return the data and a map from path to 1-based line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(
            [
                InputIssue(
                    source,
                    "",
                    f"not valid YAML: {problem}",
                    "check indentation and quoting near this line",
                    line=mark.line + 1 if mark else None,
                )
            ]
        ) from exc
    except (RecursionError, ValueError, TypeError) as exc:  # pathological input
        raise InputError([InputIssue(source, "", f"not valid YAML: {exc}")]) from exc
    lines: dict[Path, int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return data, lines


def _index_lines(node: yaml.Node, path: Path, out: dict[Path, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            out[path + (key,)] = key_node.start_mark.line + 1
            _index_lines(value_node, path + (key,), out)
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, path + (i,), out)


def dotted(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of the deepest existing prefix of path."""
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def validate_model(model: type[M], data: Any, source: str, lines: dict[Path, int]) -> M:
    """Validate data against a pydantic model; raise InputError listing every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues = [_issue(model, err, source, lines) for err in exc.errors()]
        raise InputError(issues) from None


def _issue(model: type[BaseModel], err: dict, source: str, lines: dict[Path, int]) -> InputIssue:
    loc: Path = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    kind = err["type"]
    got = err.get("input")
    if kind == "extra_forbidden":
        key = loc[-1]
        allowed = allowed_keys(model, loc[:-1])
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        fix = f"did you mean '{close[0]}'?" if close else f"allowed keys here: {', '.join(allowed)}"
        return InputIssue(source, dotted(loc), f"unknown key '{key}'", fix, line_of(lines, loc))
    if kind == "missing":
        return InputIssue(
            source, dotted(loc), "required field is missing", f"add '{loc[-1]}'", line_of(lines, loc[:-1])
        )
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    expected = _expected(err)
    problem = f"{msg}; got {_show(got)}" if kind != "value_error" else msg
    return InputIssue(source, dotted(loc), problem, expected, line_of(lines, loc))


def _expected(err: dict) -> str:
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        return f"use one of {ctx['expected']}"
    kind = err["type"]
    if kind.startswith(("int_", "float_")) and "parsing" in kind:
        return "write a plain number, e.g. 1800"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return "use a value within the stated bound"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "write a mapping (key: value lines)"
    if kind == "list_type":
        return "write a list (lines starting with '- ')"
    if kind == "bool_type" or kind == "bool_parsing":
        return "write true or false"
    if kind == "too_short":
        return "give at least one item"
    return ""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def allowed_keys(model: type[BaseModel], loc: Path) -> list[str]:
    target = _type_at(model, loc)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return sorted(f.alias or name for name, f in target.model_fields.items())
    return []


def _type_at(tp: Any, loc: Path) -> Any:
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = next(
                (f for n, f in tp.model_fields.items() if (f.alias or n) == part or n == part), None
            )
            if field is None:
                return None
            tp = field.annotation
            continue
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is dict and len(args) == 2:
            tp = args[1]
        elif origin in (list, tuple) and args:
            tp = args[0]
        else:
            return None
    return _unwrap(tp)


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            non_none = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(non_none) != 1:
                return tp
            tp = non_none[0]
        else:
            return tp


def load_model(model: type[M], text: str, source: str, *, kind: str | None = None) -> tuple[M, dict]:
    """Parse and validate one YAML document into `model`; returns the model and the line map."""
    data, lines = parse_yaml(text, source)
    if data is None:
        raise InputError([InputIssue(source, "", "the document is empty", f"write a {kind or 'YAML'} document")])
    if not isinstance(data, dict):
        raise InputError(
            [InputIssue(source, "", f"expected a mapping at the top level, got {type(data).__name__}",
                        "start the file with 'apiVersion:' and 'kind:' lines", line=1)]
        )
    if kind is not None and data.get("kind") not in (None, kind):
        raise InputError(
            [InputIssue(source, "kind", f"expected kind {kind}, got {_show(data.get('kind'))}",
                        f"is this the right file? this argument takes a {kind}", line_of(lines, ("kind",)))]
        )
    return validate_model(model, data, source, lines), lines
