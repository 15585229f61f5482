"""`redress init`, `redress department …` and `redress user list | set`: setting an office up and
keeping its departments and staff, from the command line alone (no demo needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer
import yaml
from rich.console import Console
from rich.table import Table

from engine import setup
from engine.factory import build_engine
from engine.migrate import upgrade
from engine.service import Engine
from engine.settings import get_settings, new_secret_key, secret_key_path
from engine.staff import IssuedToken
from states.errors import InvalidPayload, RedressError

console = Console()
err = Console(stderr=True)
department_app = typer.Typer(help="Departments of the office.", no_args_is_help=True)
token_app = typer.Typer(
    help="Staff bearer tokens: issue, list (never shown again), rotate, revoke.",
    no_args_is_help=True,
)
# What the CLI writes into `created_by` / `revoked_by`: the operator on the server itself.
BY = "cli"


def fail(exc: RedressError) -> NoReturn:
    """Print a typed error in both languages (every field of a refused input) and exit 2."""
    if isinstance(exc, InvalidPayload):
        for e in exc.errors:
            err.print(f"[red]error:[/red] {e.field}: {e.message_zh}\n       {e.field}: {e.message}")
    else:
        err.print(f"[red]error:[/red] {exc.message_zh}\n       {exc.message}")
    raise typer.Exit(2)


def _engine() -> Engine:
    try:
        return build_engine(migrated=True)
    except RedressError as exc:
        fail(exc)


def _ensure_secret() -> None:
    """A secret key is needed to hash tokens: written under var/ if none is configured."""
    settings = get_settings()
    if settings.secret_key:
        return
    path = secret_key_path(settings.var_dir)
    if not path.exists():
        write_secret_key(path)
        console.print(f"secret key written: {path}")
    get_settings.cache_clear()


def write_secret_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created owner-only from the start, never readable by others even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(new_secret_key() + "\n")


def _ask() -> dict[str, Any]:
    """The smallest working office, asked for interactively: the credit office and its
    administrator; the rest is added with `redress department add` and `redress user add`."""
    dept = typer.prompt("credit office id / 信用管理部门编号", default="office")
    zh = typer.prompt("name in Chinese / 中文名称", default="市信用办")
    en = typer.prompt("name in English / 英文名称", default="City Credit Office")
    jurisdiction = typer.prompt("jurisdiction / 辖区", default="default")
    admin = typer.prompt("administrator's user name / 管理员用户名", default="admin")
    return {
        "departments": [
            {
                "id": dept,
                "name_zh": zh,
                "name_en": en,
                "kind": "credit_office",
                "jurisdiction": jurisdiction,
            }
        ],
        "users": [{"name": admin, "role": "admin", "department": dept}],
    }


def init(
    file: Annotated[
        Path | None,
        typer.Option(help="A set-up file (YAML: departments, users); without it, asked."),
    ] = None,
) -> None:
    """Set an empty installation up: migrate, a secret key, departments and staff.

    Applying the same file again changes nothing; every new user's token is printed once."""
    _ensure_secret()
    if file is not None:
        try:
            doc = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            err.print(f"[red]error:[/red] {file}: {exc}")
            raise typer.Exit(2) from None
    else:
        doc = _ask()
    engine = build_engine()
    upgrade(engine.db.engine)
    try:
        result = setup.apply_setup(engine, doc)
    except RedressError as exc:
        fail(exc)
    console.print(
        f"departments: {len(result.created_departments)} created, "
        f"{len(result.kept_departments)} already there; users: {len(result.created_users)} "
        f"created, {len(result.kept_users)} already there"
    )
    if result.created_users:
        console.print("tokens / 令牌 (shown once: hand each to its user), one per line:")
        for name, token in result.created_users:
            typer.echo(f"{name}\t{token}")  # plain, so a script can read them


@department_app.command("add")
def department_add(
    dept_id: Annotated[str, typer.Argument(metavar="ID")],
    name_zh: Annotated[str, typer.Option("--zh", help="Name in Chinese")],
    name_en: Annotated[str, typer.Option("--en", help="Name in English")],
    kind: Annotated[str, typer.Option(help="unit | credit_office")] = "unit",
    jurisdiction: str = "default",
    email: Annotated[str | None, typer.Option(help="Where its letters go")] = None,
    parent: Annotated[str | None, typer.Option(help="The department above it")] = None,
) -> None:
    """Add a department."""
    body: dict[str, str | None] = {"id": dept_id, "name_zh": name_zh, "name_en": name_en}
    body["kind"] = kind
    body |= {"jurisdiction": jurisdiction, "email": email, "parent": parent}
    try:
        result = setup.apply_setup(_engine(), {"departments": [body]})
    except RedressError as exc:
        fail(exc)
    done = "created" if result.created_departments else "already there, unchanged"
    console.print(f"department {dept_id} {done}")


@department_app.command("list")
def department_list() -> None:
    """The departments, with their kind, jurisdiction, parent and active users."""
    table = Table(title="departments / 部门")
    for col in ("id", "name", "kind", "jurisdiction", "parent", "email", "users"):
        table.add_column(col)
    for d in setup.departments(_engine()):
        table.add_row(
            d["id"],
            f"{d['name_zh']} / {d['name_en']}",
            d["kind"],
            d["jurisdiction"],
            d["parent"] or "",
            d["email"] or "",
            str(d["users"]),
        )
    console.print(table)


@department_app.command("set")
def department_set(
    dept_id: Annotated[str, typer.Argument(metavar="ID")],
    name_zh: Annotated[str | None, typer.Option("--zh")] = None,
    name_en: Annotated[str | None, typer.Option("--en")] = None,
    email: str | None = None,
    parent: str | None = None,
    jurisdiction: Annotated[
        str | None, typer.Option(help="Its new cases follow this jurisdiction")
    ] = None,
) -> None:
    """Change a department's names, email, parent or jurisdiction."""
    engine = _engine()
    try:
        if any(v is not None for v in (name_zh, name_en, email, parent)):
            setup.set_department(
                engine, dept_id, name_zh=name_zh, name_en=name_en, email=email, parent=parent
            )
        if jurisdiction is not None:
            engine.set_jurisdiction(dept_id, jurisdiction)
        if all(v is None for v in (name_zh, name_en, email, parent, jurisdiction)):
            setup.set_department(engine, dept_id)  # says there is nothing to change
    except RedressError as exc:
        fail(exc)
    console.print(f"department {dept_id} changed")


def user_list() -> None:
    """Staff users with their role, department and whether they are active."""
    table = Table(title="users / 用户")
    for col in ("id", "name", "role", "department", "email", "active"):
        table.add_column(col)
    for u in setup.users(_engine()):
        table.add_row(
            str(u["id"]),
            u["name"],
            u["role"],
            u["department"],
            u["email"] or "",
            "yes" if u["active"] else "no",
        )
    console.print(table)


def user_set(
    name: str,
    role: str | None = None,
    department: str | None = None,
    email: str | None = None,
) -> None:
    """Change a user's role, department or email (applies from their next request)."""
    try:
        uid = setup.set_user(_engine(), name, role=role, department=department, email=email)
    except RedressError as exc:
        fail(exc)
    console.print(f"user {name} (id {uid}) changed")


def user_add(
    name: str,
    role: Annotated[str, typer.Option(help="handler|reviewer|head|credit_office|admin|…")],
    department: Annotated[str, typer.Option(help="Department id")],
    email: Annotated[str | None, typer.Option(help="Where their reminders go")] = None,
) -> None:
    """Create a staff user; prints their first token once, as the last line."""
    try:
        uid, token = _engine().add_user(name, role, department, email, by=BY)
    except RedressError as exc:
        fail(exc)
    days = get_settings().token_days
    console.print(
        f"user {name} (id {uid}, {role}, {department}) created; token (expires in {days} days):"
    )
    typer.echo(token)


def _set_active(name: str, active: bool, done: str) -> None:
    try:
        uid = _engine().set_user_active(name, active)
    except RedressError as exc:
        fail(exc)
    console.print(f"user {name} (id {uid}) {done}")


def user_disable(name: str) -> None:
    """Disable a user: their tokens and console sessions stop working at once, everywhere."""
    _set_active(name, False, "disabled; their tokens and sessions no longer work")


def user_enable(name: str) -> None:
    """Enable a disabled user again (their live tokens work again; sessions stay ended)."""
    _set_active(name, True, "enabled")


def _issued(issued: IssuedToken, done: str) -> None:
    expires = issued.expires_at.astimezone(ZoneInfo(get_settings().timezone))
    console.print(
        f"token {issued.id} ({issued.label}) for {issued.user} {done}; expires "
        f"{expires:%Y-%m-%d %H:%M}; shown once:"
    )
    typer.echo(issued.token)


@token_app.command("add")
def token_add(
    user: str,
    label: Annotated[str, typer.Option(help="What it is for, e.g. 'laptop', 'import script'")],
    days: Annotated[int | None, typer.Option(help="Days until it expires")] = None,
) -> None:
    """Issue another token for a user; printed once, as the last line."""
    try:
        issued = _engine().add_token(user, label, days, by=BY)
    except RedressError as exc:
        fail(exc)
    _issued(issued, "issued")


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Argument(help="Only this user's tokens")] = None,
) -> None:
    """Tokens with their label, expiry and state (the token itself is never shown again)."""
    engine = _engine()
    try:
        rows = engine.tokens(user)
    except RedressError as exc:
        fail(exc)
    zone = ZoneInfo(get_settings().timezone)
    table = Table(title="tokens / 令牌")
    for col in ("id", "user", "label", "created", "expires", "state", "ended by"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["user"],
            r["label"],
            f"{r['created_at'].astimezone(zone):%Y-%m-%d %H:%M} ({r['created_by']})",
            f"{r['expires_at'].astimezone(zone):%Y-%m-%d %H:%M}",
            r["state"],
            r["revoked_by"] or "",
        )
    console.print(table)


@token_app.command("rotate")
def token_rotate(
    token_id: Annotated[int, typer.Argument(metavar="ID")],
    days: Annotated[int | None, typer.Option(help="Days until the new one expires")] = None,
) -> None:
    """Replace a token: the old one stops working at once, the new one is printed once."""
    try:
        issued = _engine().rotate_token(token_id, days, by=BY)
    except RedressError as exc:
        fail(exc)
    _issued(issued, f"issued in place of token {token_id}")


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """End a token at once, in every server process, with the console sessions it opened."""
    try:
        user = _engine().revoke_token(token_id, by=BY)
    except RedressError as exc:
        fail(exc)
    console.print(f"token {token_id} of {user} revoked")
