"""Procedure definitions: YAML files in, immutable versions in the database, compiled per process.

One way in: the built-in procedures (`states/procedures/<name>/*.yaml`) are deployed by
`redress db upgrade` exactly as an operator's file is deployed by `redress procedures deploy` or
`POST /api/v1/procedures`. A stored version is its content: (name, version, jurisdiction) names
one SHA-256, deploying the same content again is a no-op, and different content under a
deployed key is refused.

Every process reads definitions from the database and compiles each stored row once (cached
by its id, which never changes meaning). A new case picks its version in its own transaction
(`select`), so a version deployed by another process is seen by the next case without any
restart or cache invalidation; a running case names its row (`cases.definition_id`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import engine.schema as t
from engine.db import Database, Tx
from engine.notices import LANGS
from engine.notices import ROOT as TEMPLATE_ROOT
from engine.schema import date_param, to_date, to_ts
from engine.settings import get_settings
from states.document import Checked, canonical, check, digest
from states.effects import CREATIONS, EFFECTS
from states.errors import Conflict, FieldError, InvalidDefinition, InvalidPayload, NotFound
from states.guards import GUARDS
from states.machine import Procedure, compile_procedure
from states.spec import ROLES, Catalog, Problem, validate_definition

# Seconds a process keeps its table of role remits (see Definitions.remit).
REMIT_TTL = 30.0
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "states" / "procedures"
_TEMPLATE_FILE = re.compile(r"^v(\d+)\.([a-z]+)\.html$")


def template_languages(root: Path = TEMPLATE_ROOT) -> dict[str, frozenset[str]]:
    """Each notice template on disk with the languages it is written in."""
    out: dict[str, frozenset[str]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        langs = {m.group(2) for f in folder.iterdir() if (m := _TEMPLATE_FILE.match(f.name))}
        out[folder.name] = frozenset(langs & set(LANGS))
    return out


def catalog(extra_roles: Iterable[str] | None = None) -> Catalog:
    """What a definition may name: the guards and effects in code, the roles the installation
    declares (the built-in ones plus `REDRESS_EXTRA_ROLES`, read from the settings unless
    given), the templates on disk."""
    extra = get_settings().extra_roles if extra_roles is None else tuple(extra_roles)
    roles = tuple(dict.fromkeys((*ROLES, *extra)))
    return Catalog(
        guards=GUARDS,
        effects={**EFFECTS, **CREATIONS},
        roles=roles,
        templates=template_languages(),
    )


def builtin_files() -> list[Path]:
    return sorted(BUILTIN_DIR.glob("*/*.yaml"))


def check_file(path: Path, cat: Catalog) -> Checked:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Checked(
            str(path), None, None, [Problem((), f"cannot read: {exc}", f"无法读取文件：{exc}")]
        )
    return check(text, cat, str(path))


@dataclass(frozen=True)
class StoredVersion:
    id: int
    name: str
    version: int
    jurisdiction: str
    effective_from: date
    effective_until: date | None
    sha256: str
    deployed_by: str
    deployed_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "jurisdiction": self.jurisdiction,
            "effective_from": self.effective_from.isoformat(),
            "effective_until": self.effective_until.isoformat() if self.effective_until else None,
            "sha256": self.sha256,
            "deployed_by": self.deployed_by,
            "deployed_at": self.deployed_at.isoformat(),
        }


@dataclass(frozen=True)
class Deployed:
    stored: StoredVersion
    created: bool  # False: this very content was already deployed; nothing changed


_COLUMNS = (
    "id, name, version, jurisdiction, effective_from, effective_until, sha256, "
    "deployed_by, deployed_at"
)

# The version a new case takes: in force on its filing day, its jurisdiction's own before the
# default rule set, then the latest to take effect, then the highest number.
SELECT_FOR_CASE = """
SELECT id, content FROM procedure_versions
WHERE name = :name AND jurisdiction IN (:j, 'default') AND effective_from <= :day
  AND (effective_until IS NULL OR effective_until >= :day)
ORDER BY CASE WHEN jurisdiction = :j THEN 0 ELSE 1 END, effective_from DESC, version DESC
LIMIT 1
"""


def _stored(row: sa.RowMapping) -> StoredVersion:
    until = to_date(row["effective_until"])
    start = to_date(row["effective_from"])
    at = to_ts(row["deployed_at"])
    assert start is not None and at is not None
    return StoredVersion(
        int(row["id"]),
        str(row["name"]),
        int(row["version"]),
        str(row["jurisdiction"]),
        start,
        until,
        str(row["sha256"]),
        str(row["deployed_by"]),
        at,
    )


def store(conn: sa.Connection, checked: Checked, text: str, actor: str, now: datetime) -> Deployed:
    spec = checked.spec
    assert spec is not None
    sha = digest(checked.data)
    pv = t.procedure_versions
    key = (pv.c.name == spec.name) & (pv.c.version == spec.version)
    key = key & (pv.c.jurisdiction == spec.jurisdiction)
    prior = conn.execute(sa.select(pv).where(key)).mappings().first()
    if prior is not None:
        if prior["sha256"] == sha:
            return Deployed(_stored(prior), created=False)
        raise Conflict(
            f"procedure {spec.name!r} version {spec.version} ({spec.jurisdiction}) is already "
            f"deployed with other content (sha256 {prior['sha256'][:12]}); a deployed version "
            "never changes: give the changed document a new version number",
            f"程序“{spec.name}”第{spec.version}版（{spec.jurisdiction}）已以不同内容部署，"
            "已部署的版本不可更改，请为修改后的文件使用新的版本号",
        )
    # The row's own values come from the validated spec, so the index matches the content.
    conn.execute(
        pv.insert().values(
            name=spec.name,
            version=spec.version,
            jurisdiction=spec.jurisdiction,
            effective_from=spec.effective_from,
            effective_until=spec.effective_until,
            sha256=sha,
            content=canonical(checked.data),
            source=text,
            deployed_by=actor,
            deployed_at=now,
        )
    )
    row = conn.execute(sa.select(pv).where(key)).mappings().one()
    return Deployed(_stored(row), created=True)


# Every database upgrade deploys the built-in files; a process checks each text once.
_BUILTIN_CHECKED: dict[tuple[str, tuple[str, ...]], Checked] = {}


def install_builtin(conn: sa.Connection, cat: Catalog, now: datetime) -> list[Deployed]:
    """Deploy every built-in file (a no-op for those already stored); a built-in file
    that fails to validate or that changed under its version stops the upgrade."""
    out = []
    for path in builtin_files():
        text = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(BUILTIN_DIR.parent.parent))
        key = (text, cat.roles)
        checked = _BUILTIN_CHECKED.get(key) or check(text, cat, rel)
        _BUILTIN_CHECKED[key] = checked
        if not checked.ok:
            raise InvalidDefinition(rel, checked.problems)
        out.append(store(conn, checked, text, "system", now))
    return out


class Definitions:
    """The deployed procedure versions of one database, compiled on first use."""

    def __init__(self, db: Database, cat: Catalog) -> None:
        self.db = db
        self.catalog = cat
        self._compiled: dict[int, Procedure] = {}
        self._lock = threading.Lock()
        self._remit: tuple[float, dict[str, frozenset[str]]] = (-REMIT_TTL, {})

    # -- checking and deploying -----------------------------------------------------------

    def check_text(
        self,
        text: str,
        source: str = "<text>",
        *,
        effective_from: date | None = None,
        jurisdiction: str | None = None,
    ) -> Checked:
        checked = check(text, self.catalog, source)
        if checked.data is None or not isinstance(checked.data, dict):
            return checked
        if effective_from is None and jurisdiction is None:
            return checked
        data = dict(checked.data)
        if effective_from is not None:
            data["effective_from"] = effective_from.isoformat()
        if jurisdiction is not None:
            data["jurisdiction"] = jurisdiction
        spec, problems = validate_definition(data, self.catalog)
        # The text's own problems (located) stand; the overridden values are checked again.
        if checked.problems:
            return Checked(source, data, None, checked.problems)
        return Checked(source, data, spec if not problems else None, problems)

    def deploy(
        self,
        text: str,
        *,
        actor: str,
        now: datetime,
        source: str = "<text>",
        effective_from: date | None = None,
        jurisdiction: str | None = None,
        conn: sa.Connection | None = None,
    ) -> Deployed:
        checked = self.check_text(
            text, source, effective_from=effective_from, jurisdiction=jurisdiction
        )
        if not checked.ok or checked.spec is None:
            raise InvalidDefinition(source, checked.problems)
        if conn is not None:
            return store(conn, checked, text, actor, now)
        with self.db.write() as c:
            return store(c, checked, text, actor, now)

    # -- reading --------------------------------------------------------------------------

    def select(self, tx: Tx, name: str, jurisdiction: str, day: date) -> tuple[int, Procedure]:
        """The version a case filed on `day` in `jurisdiction` takes (in the caller's
        transaction, so it sees every version committed before it)."""
        row = tx.one(
            SELECT_FOR_CASE,
            {"name": name, "j": jurisdiction, "day": date_param(day, tx.dialect)},
        )
        if row is None:
            known = tx.scalar("SELECT 1 FROM procedure_versions WHERE name = :n", {"n": name})
            if not known:
                raise InvalidPayload(
                    [
                        FieldError(
                            "procedure",
                            "unknown",
                            f"no procedure named {name!r} is deployed",
                            f"没有名为“{name}”的程序",
                        )
                    ]
                )
            raise NotFound(
                f"no version of procedure {name!r} is in force on {day.isoformat()}",
                f"{day.isoformat()}没有有效的“{name}”程序版本",
            )
        def_id = int(row[0])
        proc = self._compiled.get(def_id)
        if proc is None:
            proc = self._compile(def_id, row[1])
        return def_id, proc

    def by_id(self, def_id: int) -> Procedure:
        proc = self._compiled.get(def_id)
        if proc is not None:
            return proc
        with self.db.read() as conn:
            content = conn.execute(
                sa.select(t.procedure_versions.c.content).where(t.procedure_versions.c.id == def_id)
            ).scalar()
        if content is None:
            raise NotFound(f"no stored definition {def_id}", f"没有编号为{def_id}的程序定义")
        return self._compile(def_id, content)

    def _compile(self, def_id: int, content: str) -> Procedure:
        with self._lock:
            proc = self._compiled.get(def_id)
            if proc is None:
                # Validated when deployed; checked again against this process's catalog (a
                # guard renamed since would show here, not halfway through a command).
                proc = compile_procedure(json.loads(content), self.catalog)
                self._compiled[def_id] = proc
        return proc

    def stored(self) -> list[StoredVersion]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.text(
                    f"SELECT {_COLUMNS} FROM procedure_versions "
                    "ORDER BY name, jurisdiction, version"
                )
            ).mappings()
            return [_stored(r) for r in rows]

    def find(self, name: str, version: int, jurisdiction: str = "default") -> StoredVersion:
        for s in self.stored():
            if (s.name, s.version, s.jurisdiction) == (name, version, jurisdiction):
                return s
        raise NotFound(
            f"procedure {name!r} has no version {version} for jurisdiction {jurisdiction!r}",
            f"程序“{name}”在“{jurisdiction}”没有第{version}版",
        )

    def document(self, def_id: int) -> tuple[dict[str, Any], str]:
        """The stored canonical content (parsed) and the file as deployed."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.procedure_versions.c.content, t.procedure_versions.c.source).where(
                    t.procedure_versions.c.id == def_id
                )
            ).first()
        if row is None:
            raise NotFound(f"no stored definition {def_id}", f"没有编号为{def_id}的程序定义")
        return json.loads(row[0]), str(row[1])

    def names(self) -> list[str]:
        return sorted({s.name for s in self.stored()})

    def on_portal(self, day: date) -> list[Procedure]:
        """The procedures the public files on the portal, as the default rule set in force on
        `day` has them (the form; the case itself takes its department's version)."""
        best: dict[str, StoredVersion] = {}
        for s in self.stored():
            live = s.effective_from <= day and (
                s.effective_until is None or day <= s.effective_until
            )
            if s.jurisdiction != "default" or not live:
                continue
            prior = best.get(s.name)
            if prior is None or (s.effective_from, s.version) > (
                prior.effective_from,
                prior.version,
            ):
                best[s.name] = s
        procs = [self.by_id(s.id) for _, s in sorted(best.items())]
        return [p for p in procs if p.spec.portal is not None]

    def all(self) -> list[Procedure]:
        return [self.by_id(s.id) for s in self.stored()]

    def remit(self, role: str) -> frozenset[str]:
        """The procedures in which `role` acts on every case, whatever the department (a
        trigger of scope "role": the special task group's), over every stored version. Read
        again at most every REMIT_TTL seconds: a version deployed by another process that
        gives a role such a remit shows on that role's lists within that time."""
        at, table = self._remit
        if time.monotonic() - at >= REMIT_TTL:
            # From the stored documents as JSON, without compiling them (cheap for every new
            # engine: most versions are never compiled by a given process).
            built: dict[str, set[str]] = {}
            with self.db.read() as conn:
                rows = conn.execute(
                    sa.select(t.procedure_versions.c.name, t.procedure_versions.c.content)
                ).all()
            for name, content in rows:
                for trig in json.loads(content).get("triggers", ()):
                    if trig.get("scope") == "role":
                        for r in trig.get("roles", ()):
                            built.setdefault(r, set()).add(str(name))
            table = {r: frozenset(names) for r, names in built.items()}
            self._remit = (time.monotonic(), table)
        return table.get(role, frozenset())

    def latest(self) -> list[tuple[StoredVersion, Procedure]]:
        """Every stored version with its compiled procedure (console and API listings)."""
        return [(s, self.by_id(s.id)) for s in self.stored()]


class Builtin:
    """The built-in files compiled in memory, without a database (pure tests, the CLI's
    schema checks): the same documents `install_builtin` deploys."""

    def __init__(self, cat: Catalog | None = None) -> None:
        # The installation's declared roles (the built-in identification file names three).
        cat = cat or catalog()
        self._by_key: dict[tuple[str, int, str], Procedure] = {}
        for path in builtin_files():
            checked = check_file(path, cat)
            if not checked.ok:
                raise InvalidDefinition(str(path), checked.problems)
            assert checked.spec is not None
            proc = Procedure(checked.spec)
            self._by_key[(proc.name, proc.version, checked.spec.jurisdiction)] = proc

    def names(self) -> list[str]:
        return sorted({k[0] for k in self._by_key})

    def versions(self, name: str, jurisdiction: str = "default") -> list[Procedure]:
        return sorted(
            (p for k, p in self._by_key.items() if k[0] == name and k[2] == jurisdiction),
            key=lambda p: p.version,
        )

    def get(self, name: str, version: int, jurisdiction: str = "default") -> Procedure:
        try:
            return self._by_key[(name, version, jurisdiction)]
        except KeyError:
            raise NotFound(
                f"procedure {name!r} has no version {version}", f"程序“{name}”没有第{version}版"
            ) from None

    def all(self) -> list[Procedure]:
        return list(self._by_key.values())


_BUILTIN: list[Builtin] = []


def builtin() -> Builtin:
    if not _BUILTIN:
        _BUILTIN.append(Builtin())
    return _BUILTIN[0]
