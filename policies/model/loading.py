"""Turn YAML text into validated models, with every problem located by path and line.

Pure: callers pass text and a source name; reading files is the caller's job.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .errors import InputError, InputIssue

M = TypeVar("M", bound=BaseModel)
Path = tuple[str | int, ...]
Lines = dict[Path, int]  # the line of each path in a YAML document


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
        _index_lines(node, (), lines, set(), set(), source)
    return data, lines


def _index_lines(node: yaml.Node, path: Path, out: dict[Path, int], seen: set[int], above: set[int],
                 source: str) -> None:
    """Map every path to its line. An alias is indexed where its anchor is (once: a document of
    nested aliases would otherwise take exponential time), and an alias to a node that contains it
    is an error: no policy or snapshot field can hold itself."""
    out.setdefault(path, node.start_mark.line + 1)
    if id(node) in above:
        raise InputError([InputIssue(source, dotted(path), "a YAML alias refers to a node that contains it "
                                     "(a recursive &anchor)", "write the value out instead of the alias",
                                     line=node.start_mark.line + 1)])
    if id(node) in seen:
        return
    seen.add(id(node))
    above.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            out[path + (key,)] = key_node.start_mark.line + 1
            _index_lines(value_node, path + (key,), out, seen, above, source)
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, path + (i,), out, seen, above, source)
    above.discard(id(node))


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


def validate_pruned(model: type[M], data: Any, rounds: int = 3) -> M | None:
    """The model with every invalid value left out, so that its default applies; None when that
    does not validate either (a required field is broken). Checks that need a whole model (names
    against the catalog) can then run beside the schema errors instead of after their fix."""
    import copy

    data = copy.deepcopy(data)
    for _ in range(rounds):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                if not _drop(data, tuple(p for p in err["loc"] if not str(p).startswith("function-"))):
                    return None
    return None


def load_model_checked(model: type[M], text: str, source: str, kind: str,
                       check: Callable[[M, Lines], list[InputIssue]]) -> tuple[M, Lines, list[InputIssue]]:
    """load_model(), then `check` (the checks that need a whole model). When the schema fails, the
    check still runs on the rest of the document, and its errors are raised with the schema's:
    every error at once, not the next one after each fix."""
    try:
        loaded, lines = load_model(model, text, source, kind=kind)
    except InputError as exc:
        raise InputError(exc.issues + _check_beside(model, text, source, exc.issues, check)) from None
    return loaded, lines, check(loaded, lines)


def _check_beside(model: type[M], text: str, source: str, reported: list[InputIssue],
                  check: Callable[[M, Lines], list[InputIssue]]) -> list[InputIssue]:
    try:
        data, lines = parse_yaml(text, source)
    except InputError:
        return []
    pruned = validate_pruned(model, data) if isinstance(data, dict) else None
    if pruned is None:
        return []
    seen = {i.path for i in reported}
    return [i for i in check(pruned, lines) if i.severity == "error" and i.path not in seen]


def _drop(data: Any, loc: Path) -> bool:
    """Remove the value at loc (a mapping key) from data; False when loc is not a mapping key."""
    node = data
    for part in loc[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    if isinstance(node, dict) and loc and loc[-1] in node:
        del node[loc[-1]]
        return True
    return False


def _issue(model: type[BaseModel], err: ErrorDetails, source: str, lines: dict[Path, int]) -> InputIssue:
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


def _expected(err: ErrorDetails) -> str:
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
    if kind == "finite_number":
        return "write a finite number; to lift a limit, leave the key out"
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


def load_model(model: type[M], text: str, source: str, *, kind: str | None = None) -> tuple[M, Lines]:
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
