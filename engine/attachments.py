"""Attachments: evidence and supplements, stored by content (SHA-256) under var/attachments.

The type is decided by the file's first bytes, not by what the client claims: a letter of
objection in PDF, scans in JPEG or PNG, OFD (China's fixed-layout format) and Office documents.
The name the client sends is cleaned once, here (`clean_filename`), before it is stored or shown.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine import schema as t
from engine.db import Tx
from engine.service import Actor, Engine
from states.errors import FieldError, InvalidPayload, NotFound, RedressError

# What a file starts with → its type. ZIP-based formats (OFD, DOCX) share a signature.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"PK\x03\x04", "application/zip"),
)
ZIP_TYPES = {
    ".ofd": "application/ofd",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
ALLOWED = "PDF, JPEG, PNG, OFD, DOCX"
EXTENSIONS = {
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    **{kind: suffix for suffix, kind in ZIP_TYPES.items()},
}
MAX_NAME = 200  # characters, extension included
# Control (Cc), format (Cf: bidirectional overrides, zero-width characters) and lone surrogates
# (Cs): invisible, or able to make "evil\u202efdp.exe" read as "evilexe.pdf".
INVISIBLE = frozenset({"Cc", "Cf", "Cs"})


class TooLarge(RedressError):
    code = "too_large"


# A checked file whose bytes are stored: (clean name, content type, size, SHA-256).
Prepared = tuple[str, str, int, str]


@dataclass(frozen=True)
class Stored:
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


def clean_filename(filename: str, content_type: str | None = None) -> str:
    """The name an upload is stored and shown under: NFC; whitespace collapsed to single
    spaces; control and format characters (bidirectional overrides above all) dropped, path
    separators read as spaces; no leading dots; at most MAX_NAME characters, the extension kept.
    Nothing left: "attachment" plus the type's extension."""
    text = unicodedata.normalize("NFC", filename or "").replace("/", " ").replace("\\", " ")
    text = " ".join(text.split())  # before dropping Cc, so that a tab still separates words
    text = "".join(c for c in text if unicodedata.category(c) not in INVISIBLE)
    text = " ".join(text.split())
    name = text.lstrip(". ")  # no hidden files, no "../"
    if text != name and re.fullmatch(r"[^. ]{1,10}", name):  # only an extension: ".pdf"
        name = "attachment." + name
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        suffix = dot + ext if stem and len(ext) <= 10 else ""
        name = name[: MAX_NAME - len(suffix)].rstrip(". ") + suffix
    return name or "attachment" + EXTENSIONS.get(content_type or "", "")


def ascii_filename(name: str) -> str:
    """An ASCII stand-in for `name` (Content-Disposition's plain `filename=`): accents
    dropped, anything else outside a safe set replaced; no letter or digit left in the stem:
    "attachment" plus the extension."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    stem, dot, ext = plain.rpartition(".")
    if not dot:
        stem, ext = plain, ""
    stem = re.sub(r"[^A-Za-z0-9()+-]+", "_", stem).strip("_")
    ext = re.sub(r"[^A-Za-z0-9]", "", ext)
    if not re.search(r"[A-Za-z0-9]", stem):
        stem = "attachment"
    return stem + ("." + ext if ext else "")


def sniff(filename: str, data: bytes) -> str | None:
    for magic, kind in SIGNATURES:
        if data.startswith(magic):
            if kind == "application/zip":
                return ZIP_TYPES.get(Path(filename).suffix.lower())
            return kind
    return None


class Attachments:
    def __init__(self, engine: Engine, root: Path | None = None) -> None:
        self.engine = engine
        self.root = root or Path(engine.settings.var_dir) / "attachments"

    def check(self, filename: str, data: bytes) -> tuple[str, str]:
        """Refuse a file that is too large, empty or of the wrong type; (cleaned name, type)
        if not. Every way an upload is stored comes through here (add_many)."""
        limit = self.engine.settings.max_upload_bytes
        name = clean_filename(filename)
        if len(data) > limit:
            raise TooLarge(f"{name!r} is over {limit} bytes", f"文件“{name}”超过上限{limit}字节")
        if not data:
            raise InvalidPayload(
                [FieldError("file", "empty", f"{name!r} is empty", f"“{name}”为空文件")]
            )
        kind = sniff(name, data)
        if kind is None:
            raise InvalidPayload(
                [
                    FieldError(
                        "file",
                        "type",
                        f"{name!r} is not one of the accepted types: {ALLOWED}",
                        f"“{name}”不是可接受的文件类型：{ALLOWED}",
                    )
                ]
            )
        return clean_filename(filename, kind), kind

    def add(self, case_id: int, actor: Actor, filename: str, data: bytes) -> Stored:
        return self.add_many(case_id, actor, [(filename, data)])[0]

    def add_many(self, case_id: int, actor: Actor, files: list[tuple[str, bytes]]) -> list[Stored]:
        """Store files for a case: all of them, or (on any refusal) none."""
        eng = self.engine
        with eng.db.tx(readonly=True) as tx:
            eng.load_case(tx, case_id, actor)  # NotFound before anything is written
        prepared = self.prepare(files)
        now = eng.now()
        with eng.db.tx() as tx:
            case = eng.load_case(tx, case_id, actor, lock=True)
            return self.record_in(tx, case, actor, prepared, now)

    def prepare(self, files: Sequence[tuple[str, bytes]]) -> list[Prepared]:
        """Check every file (refusing all on the first bad one), then write each one's bytes
        where its hash says. Written before the command's transaction: a file whose
        transaction then fails is an unreferenced blob, never a row without its file."""
        checked = [(*self.check(name, data), data) for name, data in files]
        stored = []
        for name, kind, data in checked:
            digest = hashlib.sha256(data).hexdigest()
            path = self.root / digest[:2] / digest
            if not path.exists():  # content-addressed: the same file is stored once
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(data)
                tmp.replace(path)
            stored.append((name, kind, len(data), digest))
        return stored

    def record_in(
        self, tx: Tx, case: Any, actor: Actor, prepared: Sequence[Prepared], now: datetime
    ) -> list[Stored]:
        """The attachments' rows and `attach` events, in the caller's transaction (a command
        that files or supplements with documents stores all of it or nothing)."""
        eng = self.engine
        case_id = case.id
        out = []
        for name, kind, size, digest in prepared:
            att_id = int(
                tx.scalar(
                    "INSERT INTO attachments (case_id, filename, content_type, size, sha256, "
                    "storage_key, uploaded_by, uploaded_at) VALUES (:c, :f, :t, :s, :h, :k, "
                    ":u, :now) RETURNING id",
                    {
                        "c": case_id,
                        "f": name,
                        "t": kind,
                        "s": size,
                        "h": digest,
                        "k": f"{digest[:2]}/{digest}",
                        "u": actor.name,
                        "now": eng.sql_ts(now),
                    },
                )
            )
            eng.append_system_event(
                tx,
                case,
                "attach",
                {
                    "attachment_id": att_id,
                    "filename": name,
                    "sha256": digest,
                    "size": size,
                    "by": actor.name,
                },
                now,
                actor,  # the uploader, not the clock
            )
            out.append(Stored(att_id, name, kind, size, digest))
        return out

    def get(self, attachment_id: int, actor: Actor) -> tuple[dict[str, Any], Path]:
        eng = self.engine
        with eng.db.read() as conn:
            row = (
                conn.execute(sa.select(t.attachments).where(t.attachments.c.id == attachment_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no attachment {attachment_id}", f"没有编号为{attachment_id}的附件")
        with eng.db.tx(readonly=True) as tx:
            eng.load_case(tx, int(row["case_id"]), actor)  # NotFound unless visible
        meta = dict(row)
        meta["filename"] = clean_filename(row["filename"], row["content_type"])
        return meta, self.root / row["storage_key"]

    def list(self, case_id: int) -> list[dict[str, Any]]:
        with self.engine.db.read() as conn:
            rows = (
                conn.execute(
                    sa.select(t.attachments)
                    .where(t.attachments.c.case_id == case_id)
                    .order_by(t.attachments.c.id)
                )
                .mappings()
                .all()
            )
        return [
            {
                "id": r["id"],
                # Cleaned again: rows stored before names were cleaned show cleaned too.
                "filename": clean_filename(r["filename"], r["content_type"]),
                "content_type": r["content_type"],
                "size": r["size"],
                "sha256": r["sha256"],
                "uploaded_by": r["uploaded_by"],
                "uploaded_at": r["uploaded_at"],
            }
            for r in rows
        ]
