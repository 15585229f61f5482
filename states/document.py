"""Procedure definition documents: YAML text in, a validated spec or located problems out.

An operator writes a procedure version as one YAML file. Parsing keeps each node's position,
so every problem the schema or the semantic checks find (`states/spec.py`) is reported with
its line and column as well as its path inside the document (`triggers[3].dest`). The
canonical form (sorted-key JSON of the parsed data) is what is hashed and stored: reformatting
or re-commenting a file does not make a new version. Pure: text in, values out, no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml

from states.spec import Catalog, Path, Problem, ProcedureSpec, validate_definition


@dataclass(frozen=True)
class Checked:
    """The outcome of checking one document: the spec when it is valid, else every problem."""

    source: str
    data: Any
    spec: ProcedureSpec | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.spec is not None and not self.problems


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not allowed in a procedure definition")


def canonical(data: Any) -> str:
    """The stored form of a definition: JSON with sorted keys, dates as ISO text."""
    return json.dumps(
        data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_plain
    )


def digest(data: Any) -> str:
    return hashlib.sha256(canonical(data).encode()).hexdigest()


def _marks(
    node: yaml.Node, path: Path, out: dict[Path, tuple[int, int]], dups: list[Problem]
) -> None:
    out[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                dups.append(
                    Problem(
                        (*path, name),
                        f"key {name!r} appears twice in this mapping",
                        f"同一映射中键“{name}”出现两次",
                        key.start_mark.line + 1,
                        key.start_mark.column + 1,
                    )
                )
            seen.add(name)
            out.setdefault((*path, name), (key.start_mark.line + 1, key.start_mark.column + 1))
            _marks(value, (*path, name), out, dups)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _marks(item, (*path, i), out, dups)


def locate(problem: Problem, marks: Mapping[Path, tuple[int, int]]) -> Problem:
    """The problem at the deepest node of its path that the text has (a missing key is
    reported at the mapping that lacks it)."""
    path = problem.path
    while path and path not in marks:
        path = path[:-1]
    line, column = marks.get(path, (1, 1))
    return problem.at(line, column)


# libyaml when present (about 15 times faster), the pure-Python loader otherwise; both safe.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str) -> tuple[Any, dict[Path, tuple[int, int]], list[Problem]]:
    """Data, the position of every node, and problems of the text itself (bad YAML,
    duplicate keys). Bad YAML gives no data and one problem at its position."""
    loader = _Loader(text)
    try:
        # One pass: compose the node tree (positions), then build the data from it.
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "not valid YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        return (
            None,
            {},
            [Problem((), f"not valid YAML: {what}", f"YAML 格式错误：{what}", line, column)],
        )
    except yaml.YAMLError as exc:
        return None, {}, [Problem((), f"not valid YAML: {exc}", f"YAML 格式错误：{exc}")]
    finally:
        loader.dispose()
    marks: dict[Path, tuple[int, int]] = {}
    dups: list[Problem] = []
    if root is not None:
        _marks(root, (), marks, dups)
    return data, marks, dups


def check(text: str, catalog: Catalog, source: str = "<text>") -> Checked:
    """Every problem of a document at once, each located in the text."""
    data, marks, problems = parse(text)
    if data is None and problems:
        return Checked(source, None, None, problems)
    try:
        canonical(data)
    except TypeError as exc:
        return Checked(source, data, None, [Problem((), str(exc), "定义中含有不支持的值类型")])
    spec, found = validate_definition(data, catalog)
    located = problems + [locate(p, marks) for p in found]
    located.sort(key=lambda p: (p.line or 0, p.column or 0))
    return Checked(source, data, spec if not located else None, located)
