"""Cases and commands: opening a case, advancing it (who may, with what, under which guards),
and assigning it.

One capability of the engine (`engine/service.py` puts them together): its methods take
the whole `Engine` as `self` and call the other capabilities through it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from engine import sql
from engine.core import (
    GENESIS,
    Actor,
    Advanced,
    Opened,
    _Case,
    _random_code,
    canonical,
)
from engine.db import Slot, Tx
from engine.sessions import end_sessions_in
from states.errors import (
    Conflict,
    FieldError,
    Forbidden,
    IdempotencyConflict,
    Ineligible,
    InvalidPayload,
    NotFound,
    StaleVersion,
    TransitionNotAllowed,
)
from states.guards import GUARDS, Context
from states.identifiers import IdentifierError, validate_subject_identifier
from states.machine import Procedure, check_json, is_clean_text
from states.records import SUBJECT_KINDS, RecordState
from states.spec import ApplicantSpec, OpensSpec

if TYPE_CHECKING:
    from engine.service import Engine


class CaseCommands:
    def open_case(
        self: Engine,
        *,
        procedure: str,
        record_id: int | None,
        applicant: Mapping[str, Any],
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        filed_on: date | None = None,
        department_id: str | None = None,
        idempotency_key: str | None = None,
        files: Sequence[tuple[str, bytes]] = (),
        access_code: bool = True,
    ) -> Opened:
        """Open a case; `files` (the application's evidence) are stored with it in one
        transaction, as the applicant's own uploads. `record_id` is None for a procedure
        about a subject without a published record (a complaint). `access_code=False`: the
        applicant keeps no way to follow the case (an anonymous complainant's choice)."""
        now = self.now()
        filed = filed_on or self.calendar.local_date(now)
        if filed > self.calendar.local_date(now):
            raise InvalidPayload(
                [
                    FieldError(
                        "filed_on",
                        "future",
                        "the filing date cannot be after today",
                        "收件日期不能晚于今天",
                    )
                ]
            )
        prepared = self._attachments().prepare(files) if files else ()
        check_json(payload or {}, "payload")
        check_json(applicant, "applicant")
        if department_id and not (
            actor.is_office or actor.is_global or department_id == actor.department_id
        ):
            # Staff file into their own department; only the credit office routes elsewhere.
            raise Forbidden(
                "only the credit office or an administrator files a case into another department",
                "只有信用管理部门或管理员可以将案件分派给其他部门",
            )
        with self.db.tx() as tx:
            return self.open_in(
                tx,
                procedure=procedure,
                record_id=record_id,
                applicant=applicant,
                actor=actor,
                payload=payload or {},
                filed=filed,
                now=now,
                department_id=department_id,
                idempotency_key=idempotency_key,
                prepared=prepared,
                access_code=access_code,
            )

    def open_in(
        self: Engine,
        tx: Tx,
        *,
        procedure: str,
        record_id: int | None,
        applicant: Mapping[str, Any],
        actor: Actor,
        payload: Mapping[str, Any],
        filed: date,
        now: datetime,
        department_id: str | None = None,
        idempotency_key: str | None = None,
        prepared: Sequence[Any] = (),
        access_code: bool = True,
        department_field: str = "department_id",
    ) -> Opened:
        """Open a case in the caller's transaction (a command that opens another case, as a
        complaint opens an identification, commits both or neither)."""
        idempotency_key = idempotency_key or None  # an empty key is no key (never stored)
        dept = department_id or self._default_department(tx, actor)
        jurisdiction = tx.scalar(
            "SELECT jurisdiction FROM departments WHERE id = :id", {"id": dept}
        )
        if jurisdiction is None:
            raise InvalidPayload(
                [
                    FieldError(
                        department_field,
                        "unknown",
                        f"no department {dept!r}",
                        f"没有部门“{dept}”",
                    )
                ]
            )
        # The version in force on the filing day for the handling department's
        # jurisdiction, read in this transaction: a version deployed a moment ago by any
        # process applies.
        def_id, proc = self.procedures.select(tx, procedure, str(jurisdiction), filed)
        spec = proc.spec
        if spec.record == "required" and record_id is None:
            raise InvalidPayload(
                [
                    FieldError(
                        "record_id",
                        "required",
                        f"a {procedure} case is about a published record: record_id is required",
                        "此类案件须针对一条已公示的记录，record_id 必填",
                    )
                ]
            )
        if spec.record == "none" and record_id is not None:
            raise InvalidPayload(
                [
                    FieldError(
                        "record_id",
                        "unexpected",
                        f"a {procedure} case is not about a published record: leave record_id out",
                        "此类案件不针对已公示的记录，请勿填写 record_id",
                    )
                ]
            )
        person = self._validate_applicant(applicant, proc)
        fields = proc.validate_intake(payload)
        req_hash = hashlib.sha256(
            canonical(
                # Who asks is part of the request: another caller reusing a key gets a
                # conflict, never someone else's case.
                {
                    "p": procedure,
                    "r": record_id,
                    "a": person,
                    "f": fields,
                    "d": filed,
                    "by": [actor.name, actor.role, actor.department_id],
                }
            ).encode()
        ).hexdigest()
        if idempotency_key:
            prior = tx.one(
                "SELECT id, case_no, request_hash, state, version, procedure, "
                "definition_version, definition_id FROM cases WHERE idempotency_key = :k",
                {"k": idempotency_key},
            )
            if prior is not None:
                if prior[2] != req_hash:
                    raise IdempotencyConflict(
                        "this idempotency key was used for a different application",
                        "该幂等键已用于另一份申请",
                    )
                return Opened(
                    prior[0],
                    prior[1],
                    prior[3],
                    prior[4],
                    prior[5],
                    prior[6],
                    None,
                    replayed=True,
                    definition_id=prior[7],
                )
        rec: RecordState | None = None
        rec_unit: str | None = None
        rec_subject = ""
        if record_id is not None:
            rec, rec_unit, rec_subject = self._load_record_and_unit(tx, record_id)
        ctx = Context(case_data={}, payload=fields, record=rec, today=filed, rules=spec.rules)
        for gname in spec.intake_guards:
            verdict = GUARDS[gname](ctx)
            if not verdict.ok:
                raise Ineligible(verdict.reason_en, verdict.reason_zh, verdict.earliest)
        if record_id is not None:
            dup = tx.scalar(
                "SELECT case_no FROM cases WHERE record_id = :r AND procedure = :p "
                "AND closed_at IS NULL",
                {"r": record_id, "p": procedure},
            )
            if dup:
                # Not which case: the caller may not be allowed to see it.
                raise Conflict(
                    f"record {record_id} already has an open {procedure} case",
                    "该记录已有办理中的同类案件",
                )
        code = _random_code(10)
        state = proc.initial
        at = self.sql_ts(now)
        payload_text = canonical({"applicant": person, **fields})
        detail: dict[str, Any] = {}
        person_text = canonical(person)
        row = {
            "p": procedure,
            "v": proc.version,
            "def": def_id,
            "j": str(jurisdiction),
            "s": state,
            "r": record_id,
            "d": dept,
            "a": person_text,
            "f": self.sql_date(filed),
            "at": at,
            "h": GENESIS,
            # Without an access code the hash is of a code nobody is told: no one signs in.
            "code": self.hash_secret(code if access_code else _random_code(32)),
            "k": idempotency_key,
            "rh": req_hash,
        }
        prefix = f"{spec.case_prefix}{filed:%Y%m%d}"
        # Random, so case numbers cannot be enumerated; a number already taken (rare)
        # inserts nothing and the next one is tried.
        for _ in range(8):
            case_no = prefix + _random_code(6)
            data = {**fields, "case_no": case_no, "filed_on": filed.isoformat()}
            inserted = tx.scalar(sql.CASE_INSERT, {**row, "no": case_no, "data": canonical(data)})
            if inserted is not None:
                break
        else:  # pragma: no cover
            raise Conflict("could not allocate a case number", "无法分配案件编号")
        case_id = int(inserted)
        case = _Case(
            case_id,
            procedure,
            proc.version,
            state,
            1,
            record_id,
            dept,
            None,
            data,
            0,
            GENESIS,
            case_no,
            rec_unit,
            person_text,
            rec_subject,
            definition_id=def_id,
            jurisdiction=str(jurisdiction),
        )
        started = self.start_timers(tx, proc, case, spec.initial_state.starts, now, anchor=filed)
        if started:
            detail["deadlines"] = started
        notices = self._queue_notices(
            tx, proc, case, spec.intake_notices, 1, now, "submit", fields, detail, rec
        )
        if notices:
            detail["notices"] = notices
        self.append_event(
            tx,
            case,
            self.event_row(case, "submit", None, state, 1, actor, now, payload_text, detail),
        )
        tx.execute(sql.CASE_CHAIN_UPDATE, {"seq": 1, "hash": case.last_hash, "id": case_id})
        if prepared:
            # The public files as nobody in particular; the files are the case's applicant's.
            who = (
                Actor(name=f"applicant:{case_no}", role="applicant", case_id=case_id)
                if actor.role == "applicant"
                else actor
            )
            self._attachments().record_in(tx, case, who, prepared, now)
        return Opened(
            case_id,
            case_no,
            state,
            1,
            procedure,
            proc.version,
            code if access_code else None,
            definition_id=def_id,
        )

    def _validate_applicant(
        self: Engine, applicant: Mapping[str, Any], proc: Procedure | None = None
    ) -> dict[str, Any]:
        """The applicant as stored: checked against who the procedure accepts (its kinds,
        whether an identifier is needed, whether an anonymous filing is allowed)."""
        if not isinstance(applicant, Mapping):
            raise InvalidPayload([FieldError("applicant", "type", "must be an object", "须为对象")])
        who = proc.spec.applicant if proc is not None else ApplicantSpec()
        if applicant.get("anonymous") is True:
            if not who.anonymous:
                raise InvalidPayload(
                    [
                        FieldError(
                            "applicant.anonymous",
                            "not_allowed",
                            "this procedure takes no anonymous filings",
                            "此类申请不接受匿名提交",
                        )
                    ]
                )
            extra = sorted(set(applicant) - {"anonymous"})
            if extra:
                # Anonymous means no name and no contact details are kept.
                raise InvalidPayload(
                    [
                        FieldError(
                            f"applicant.{k}",
                            "anonymous",
                            "an anonymous filing keeps no name or contact details",
                            "匿名提交不留存姓名和联系方式",
                        )
                        for k in extra
                    ]
                )
            return {"kind": "person", "name": "", "identifier": "", "anonymous": True}
        errors: list[FieldError] = []
        kind = applicant.get("kind")
        name = str(applicant.get("name") or "").strip()
        ident = str(applicant.get("identifier") or "")
        if kind not in who.kinds:
            errors.append(
                FieldError(
                    "applicant.kind",
                    "choice",
                    f"must be one of {', '.join(who.kinds)}",
                    f"须为{'、'.join(who.kinds)}之一",
                )
            )
        if not name:
            errors.append(FieldError("applicant.name", "required", "is required", "必填"))
        elif len(name) > 200:
            errors.append(
                FieldError("applicant.name", "too_long", "at most 200 characters", "最多200个字符")
            )
        if kind in who.kinds and kind in SUBJECT_KINDS and (ident or who.identifier == "required"):
            try:
                ident = validate_subject_identifier(kind, ident, self.today())
            except IdentifierError as exc:
                errors.append(
                    FieldError("applicant.identifier", exc.code, exc.message_en, exc.message_zh)
                )
        contact = {k: str(applicant[k]).strip() for k in ("email", "phone") if applicant.get(k)}
        for k, v in (("name", name), *contact.items()):
            if not is_clean_text(v) or len(v) > 200:
                errors.append(
                    FieldError(
                        f"applicant.{k}",
                        "text",
                        "contains an invalid character or is too long",
                        "含有非法字符或过长",
                    )
                )
        unknown = set(applicant) - {"kind", "name", "identifier", "email", "phone", "anonymous"}
        for k in sorted(unknown):
            errors.append(
                FieldError(
                    f"applicant.{k}",
                    "unknown",
                    "not a field; allowed: kind, name, identifier, email, phone",
                    "无此字段；可用字段：kind、name、identifier、email、phone",
                )
            )
        if errors:
            raise InvalidPayload(errors)
        return {"kind": kind, "name": name, "identifier": ident, **contact}

    def _default_department(self: Engine, tx: Tx, actor: Actor) -> str:
        # Cases are handled by the credit office (one intake window); staff filing on an
        # applicant's behalf file into their own department.
        if actor.is_staff and actor.department_id:
            return actor.department_id
        dept = tx.scalar("SELECT id FROM departments WHERE kind = 'credit_office' ORDER BY id")
        if dept is None:
            raise NotFound("no credit office department is set up", "尚未设置信用管理部门")
        return str(dept)

    def advance(
        self: Engine,
        case_id: int,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        files: Sequence[tuple[str, bytes]] = (),
        within: Slot | None = None,
    ) -> Advanced:
        """Fire `trigger`; `files` (documents supplied with it) are stored in the same
        transaction, so a supplement is never half-made (files without the step, or the step
        without its files). `within`: the slot of a group of commands committed together
        (the API's write lane on SQLite); otherwise the command is its own transaction."""
        payload = payload if payload is not None else {}
        idempotency_key = idempotency_key or None  # an empty key is no key (never stored)
        check_json(payload, "payload")
        now = self.now()
        prepared = self._attachments().prepare(files) if files else ()
        req_hash = (
            hashlib.sha256(
                canonical([trigger, payload, expected_version, actor.name, actor.role]).encode()
            ).hexdigest()
            if idempotency_key
            else None
        )
        with within.tx() if within is not None else self.db.tx() as tx:
            case = self.load_case(tx, case_id, actor, lock=True)
            if idempotency_key:
                prior = tx.one(sql.EVENT_BY_KEY, {"case_id": case_id, "key": idempotency_key})
                if prior is not None:
                    if prior[0] != req_hash:
                        raise IdempotencyConflict(
                            "this idempotency key was used for a different command",
                            "该幂等键已用于另一操作",
                        )
                    done = json.loads(prior[4])
                    return Advanced(
                        case_id,
                        prior[1],
                        prior[2],
                        prior[3],
                        replayed=True,
                        notices=tuple(done.get("notices", ())),
                        record_version=done.get("record_version"),
                    )
            if expected_version is not None and expected_version != case.version:
                raise StaleVersion(case_id, expected_version, case.version)
            if prepared:
                self._attachments().record_in(tx, case, actor, prepared, now)
            return self.advance_locked(
                tx, case, trigger, actor, payload, now, idempotency_key, req_hash
            )

    def advance_locked(
        self: Engine,
        tx: Tx,
        case: _Case,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any],
        now: datetime,
        idempotency_key: str | None = None,
        req_hash: str | None = None,
    ) -> Advanced:
        """Fire `trigger` on a case already loaded (and locked) in this transaction."""
        proc = self.procedures.by_id(case.definition_id)
        self._authorize(proc, case, trigger, actor)
        fields = proc.validate_payload(trigger, payload)
        refusal = self._extension_refusal(proc, case, trigger)
        if refusal is not None:
            raise TransitionNotAllowed(
                trigger, case.state, self._allowed_names(proc, case, actor), *refusal
            )
        branches = proc.branches[trigger]
        needs_record = any(b.effect or b.guards or b.unless for b in branches)
        rec = case.record() if needs_record else None
        today = self.calendar.local_date(now)
        ctx = Context(case.data, fields, rec, today, proc.spec.rules, actor.name, actor.role)
        try:
            fired = proc.fire(case.state, trigger, ctx)
        except TransitionNotAllowed as exc:
            # The machine knows the guards; the engine knows who is asking.
            raise TransitionNotAllowed(
                trigger,
                case.state,
                self._allowed_names(proc, case, actor),
                exc.reason,
                exc.reason_zh,
            ) from None
        branch = fired.trigger
        data = {**case.data, **fields, **branch.sets}
        if branch.records_actor:
            data[branch.records_actor] = {"name": actor.name, "role": actor.role}
        for tm in proc.extended_by.get(trigger, ()):
            # Counted per timer; the request trigger is refused once max_count is reached.
            counts = dict(data.get("extensions") or {})
            counts[tm.name] = int(counts.get(tm.name, 0)) + 1
            data["extensions"] = counts
        detail = case.detail
        version = case.version + 1
        closed = proc.is_closed(fired.dest)
        at = self.sql_ts(now)
        seq = case.event_seq + 1
        payload_text = canonical(fields)
        # The effect is worked out first: a sync timer starts only if the record changes.
        effect = proc.effect(branch)
        after = Context(data, fields, rec, today, proc.spec.rules, actor.name, actor.role)
        change = effect(rec, after) if effect is not None and rec is not None else None
        creation = proc.creation(branch) if rec is None else None
        record_version = None
        if creation is not None:
            # The decision creates the case's record (an identification publishes it).
            rec = self.record_for_case(tx, case, creation(after), actor, now)
            record_version = rec.version
            detail["record_created"] = rec.id
        timer_changes = self._apply_timer_plan(
            tx,
            proc,
            case,
            fired.source,
            fired.dest,
            trigger,
            data,
            now,
            change is not None or creation is not None,
        )
        if timer_changes:
            detail["deadlines"] = timer_changes
        if change is not None and rec is not None:
            record_version = self.apply_record_change(tx, rec, change, actor.name, case.id, now)
            detail["record_version"] = record_version
        if branch.opens is not None:
            detail["opened"] = self._open_linked(tx, case, branch.opens, data, actor, today, now)
        access_code = None
        if branch.issues_access_code:
            # A party who did not file the case follows it with the code its letter carries;
            # any earlier code stops working.
            access_code = _random_code(10)
            tx.execute(
                "UPDATE cases SET access_code_hash = :h WHERE id = :id",
                {"h": self.hash_secret(access_code), "id": case.id},
            )
            end_sessions_in(tx, self, reason="code_reset", case_id=case.id)
            detail["access_code_issued"] = True
        notices = self._queue_notices(
            tx,
            proc,
            case,
            branch.notices,
            seq,
            now,
            trigger,
            fields,
            detail,
            rec,
            access_code=access_code,
            data=data,
        )
        if notices:
            detail["notices"] = notices
        event = self.event_row(
            case,
            trigger,
            fired.source,
            fired.dest,
            version,
            actor,
            now,
            payload_text,
            detail,
            idempotency_key,
            req_hash,
        )
        n = tx.execute(
            sql.CASE_UPDATE,
            {
                "state": fired.dest,
                "data": canonical(data),
                "seq": seq,
                "hash": event["hash"],
                "now": at,
                "closed_at": at if closed else None,
                "id": case.id,
                "version": case.version,
            },
        )
        if n != 1:
            current = tx.scalar(sql.CASE_VERSION, {"id": case.id})
            raise StaleVersion(case.id, case.version, int(current or 0))
        self.append_event(tx, case, event)
        return Advanced(
            case.id, fired.dest, version, seq, notices=tuple(notices), record_version=record_version
        )

    def _open_linked(
        self: Engine,
        tx: Tx,
        case: _Case,
        opens: OpensSpec,
        data: Mapping[str, Any],
        actor: Actor,
        today: date,
        now: datetime,
    ) -> dict[str, Any]:
        """Open the case a trigger opens (a substantiated complaint's identification) in this
        transaction, and link the two both ways."""
        person: dict[str, Any] = {
            k: data[src] for k, src in opens.applicant.items() if data.get(src)
        }
        intake = {k: data[src] for k, src in opens.fields.items() if data.get(src) is not None}
        dept = str(data[opens.department]) if opens.department else case.department_id
        try:
            opened = self.open_in(
                tx,
                procedure=opens.procedure,
                record_id=None,
                applicant=person,
                actor=actor,
                payload=intake,
                filed=today,
                now=now,
                department_id=dept,
                department_field=opens.department or "department_id",
                # The party learns of the new case from its own letters, with their own code.
                access_code=False,
            )
        except InvalidPayload as exc:
            # Name the fields of this case the new one's values came from.
            back = {f"applicant.{k}": v for k, v in opens.applicant.items()}
            back |= {k: v for k, v in opens.fields.items()}
            raise InvalidPayload(
                [
                    FieldError(
                        back.get(e.field, e.field),
                        e.code,
                        f"for the new {opens.procedure} case: {e.message}",
                        f"移送的新案件：{e.message_zh}",
                    )
                    for e in exc.errors
                ]
            ) from None
        at = self.sql_ts(now)
        tx.executemany(
            sql.CASE_LINK_INSERT,
            [
                {"a": case.id, "b": opened.case_id, "rel": "opened", "at": at},
                {"a": opened.case_id, "b": case.id, "rel": "opened_from", "at": at},
            ],
        )
        return {
            "case_id": opened.case_id,
            "case_no": opened.case_no,
            "procedure": opens.procedure,
        }

    def _authorize(self: Engine, proc: Procedure, case: _Case, trigger: str, actor: Actor) -> None:
        if trigger not in proc.triggers_from(case.state):
            raise TransitionNotAllowed(trigger, case.state, self._allowed_names(proc, case, actor))
        branch = proc.branches[trigger][0]
        if actor.role not in branch.roles and actor.role != "admin":
            raise Forbidden(
                f"role {actor.role!r} may not {trigger!r}; it needs one of: "
                f"{', '.join(branch.roles)}",
                f"角色“{actor.role}”不能执行“{trigger}”，需要：{'、'.join(branch.roles)}",
            )
        if not self._in_scope(branch.scope, case, actor):
            who = (
                "the determining unit"
                if branch.scope == "determining_unit"
                else "the handling department"
            )
            unit_zh = "认定单位" if branch.scope == "determining_unit" else "承办部门"
            raise Forbidden(
                f"{trigger!r} is for {who} of this case",
                f"“{trigger}”须由本案{unit_zh}执行",
            )

    @staticmethod
    def _in_scope(scope: str, case: _Case, actor: Actor) -> bool:
        if not actor.is_staff or actor.role == "admin" or scope == "role":
            return True  # "role": the role itself is the remit, whatever the department
        if scope == "handling":
            return actor.department_id == case.department_id
        if scope == "determining_unit":
            return actor.department_id == case.determining_unit
        return actor.department_id in (case.department_id, case.determining_unit)

    def _allowed_names(self: Engine, proc: Procedure, case: _Case, actor: Actor) -> list[str]:
        return list(self.allowed_triggers(proc, case, actor, None))

    def allowed_triggers(
        self: Engine, proc: Procedure, case: _Case, actor: Actor, rec: RecordState | None
    ) -> Iterator[str]:
        """The triggers `actor` may fire on `case` now, in the procedure's order."""
        ctx = Context(case.data, {}, rec, self.today(), proc.spec.rules, actor.name, actor.role)
        for trig in proc.triggers_from(case.state):
            b = proc.branches[trig][0]
            if actor.role not in b.roles and actor.role != "admin":
                continue
            if not self._in_scope(b.scope, case, actor):
                continue
            if self._extension_refusal(proc, case, trig) is not None:
                continue
            # Judged without the command's fields: guards on those are checked when it is sent.
            if proc.guard_verdicts(case.state, trig, ctx):
                continue
            yield trig

    def _allowed(
        self: Engine, proc: Procedure, case: _Case, actor: Actor, rec: RecordState | None
    ) -> list[dict[str, Any]]:
        out = []
        for trig in self.allowed_triggers(proc, case, actor, rec):
            b = proc.branches[trig][0]
            out.append(
                {
                    "trigger": trig,
                    "label": b.label.model_dump(),
                    "required": list(b.required),
                    "optional": list(b.optional),
                    "fields": [proc.fields[f].model_dump() for f in (*b.required, *b.optional)],
                }
            )
        return out

    @staticmethod
    def _extension_refusal(proc: Procedure, case: _Case, trigger: str) -> tuple[str, str] | None:
        """(en, zh) if `trigger` asks for an extension the definition no longer allows."""
        tm = proc.extension_requests.get(trigger)
        if tm is None or tm.extension is None:
            return None
        used = int((case.data.get("extensions") or {}).get(tm.name, 0))
        if used < tm.extension.max_count:
            return None
        n = tm.extension.max_count
        return (
            f"the {tm.label.en} may be extended {n} time(s) in all; that has been used",
            f"{tm.label.zh}只能延期{n}次，已延期{used}次",
        )

    def assign(self: Engine, case_id: int, assignee_id: int | None, actor: Actor) -> dict[str, Any]:
        """Give a case to a handler of its department (or take it away with None)."""
        if actor.role not in ("reviewer", "head", "admin", "handler"):
            raise Forbidden(f"role {actor.role!r} may not assign cases", "该角色不能分派案件")
        now = self.now()
        with self.db.tx() as tx:
            case = self.load_case(tx, case_id, actor, lock=True)
            if actor.role != "admin" and actor.department_id != case.department_id:
                raise Forbidden(
                    "only the handling department assigns its cases", "只有承办部门可以分派本案"
                )
            if actor.role == "handler" and assignee_id != actor.user_id:
                raise Forbidden(
                    "a handler may only take a case for themselves", "经办人只能认领给自己"
                )
            name = None
            if assignee_id is not None:
                row = tx.one(
                    "SELECT name, department_id, active FROM users WHERE id = :id",
                    {"id": assignee_id},
                )
                if (
                    row is None
                    or not row[2]
                    or row[1] not in (case.department_id, case.determining_unit)
                ):
                    raise InvalidPayload(
                        [
                            FieldError(
                                "assignee_id",
                                "unknown",
                                "no active user of this case's departments has that id",
                                "本案所属部门中没有该用户",
                            )
                        ]
                    )
                name = row[0]
            tx.execute(
                "UPDATE cases SET assignee_id = :a, updated_at = :now WHERE id = :id",
                {"a": assignee_id, "now": self.sql_ts(now), "id": case_id},
            )
            self.append_system_event(
                tx,
                case,
                "assign",
                {"assignee_id": assignee_id, "assignee": name, "by": actor.name},
                now,
            )
        return {"case_id": case_id, "assignee_id": assignee_id, "assignee": name}
