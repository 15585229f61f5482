"""The procedures redress knows, by name and version, and which version applies on a date.

A case keeps the version it was opened under; a new version applies only to cases filed on or
after its effective date. Compiling happens once per (name, version), when the registry is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from functools import cache
from typing import Any

from states.errors import NotFound
from states.machine import Procedure, compile_procedure
from states.procedures.objection import OBJECTION_V1
from states.procedures.repair import REPAIR_V1, REPAIR_V2

BUILTIN: tuple[Mapping[str, Any], ...] = (OBJECTION_V1, REPAIR_V1, REPAIR_V2)


class Registry:
    def __init__(self, definitions: Iterable[Mapping[str, Any]] = ()) -> None:
        self._by_key: dict[tuple[str, int], Procedure] = {}
        for d in definitions:
            self.add(d)

    def add(self, definition: Mapping[str, Any]) -> Procedure:
        proc = compile_procedure(definition)
        if proc.spec.key in self._by_key:
            raise ValueError(f"procedure {proc.name!r} version {proc.version} is already loaded")
        self._by_key[proc.spec.key] = proc
        return proc

    def names(self) -> list[str]:
        return sorted({name for name, _ in self._by_key})

    def versions(self, name: str) -> list[Procedure]:
        found = sorted(
            (p for (n, _), p in self._by_key.items() if n == name), key=lambda p: p.version
        )
        if not found:
            raise NotFound(f"no procedure named {name!r}", f"没有名为“{name}”的程序")
        return found

    def get(self, name: str, version: int) -> Procedure:
        try:
            return self._by_key[(name, version)]
        except KeyError:
            raise NotFound(
                f"procedure {name!r} has no version {version}",
                f"程序“{name}”没有第{version}版",
            ) from None

    def for_date(self, name: str, day: date) -> Procedure:
        """The version in force on `day`: the latest one that has taken effect and not ended."""
        live = [
            p
            for p in self.versions(name)
            if p.spec.effective_from <= day
            and (p.spec.effective_until is None or day <= p.spec.effective_until)
        ]
        if not live:
            raise NotFound(
                f"no version of procedure {name!r} is in force on {day.isoformat()}",
                f"{day.isoformat()}没有有效的“{name}”程序版本",
            )
        return max(live, key=lambda p: (p.spec.effective_from, p.version))


@cache
def builtin_registry() -> Registry:
    return Registry(BUILTIN)
