"""`redress`: database, demo data, procedures, audit, users and the server, from one command."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from cli import office
from cli.office import write_secret_key
from engine import access
from engine.deadlines import Deadlines, read_calendar_file
from engine.definitions import catalog as definition_catalog
from engine.definitions import check_file
from engine.demo import load_demo
from engine.factory import build_engine
from engine.migrate import current, upgrade
from engine.service import Actor, Engine
from engine.settings import (
    InsecureSettings,
    Settings,
    check_secret,
    get_settings,
    secret_key_path,
)
from states.calendar import Period
from states.diff import diff as diff_specs
from states.errors import InvalidDefinition, RedressError
from states.machine import Procedure
from states.spec import Problem, procedure_json_schema

app = typer.Typer(
    help="redress: objections, verification, correction and credit repair.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
procedures_app = typer.Typer(help="Procedure definitions.", no_args_is_help=True)
audit_app = typer.Typer(help="Tamper checks.", no_args_is_help=True)
user_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
secret_app = typer.Typer(help="The installation's secret key.", no_args_is_help=True)
calendar_app = typer.Typer(
    help="Working-day calendar: holiday notices and due dates.", no_args_is_help=True
)
app.add_typer(calendar_app, name="calendar")
app.add_typer(db_app, name="db")
app.add_typer(procedures_app, name="procedures")
app.add_typer(audit_app, name="audit")
cases_app = typer.Typer(help="Running cases.", no_args_is_help=True)
app.add_typer(cases_app, name="cases")
app.add_typer(user_app, name="user")
app.add_typer(secret_app, name="secret")
app.add_typer(office.department_app, name="department")
app.command("init")(office.init)
for _name, _command in (
    ("add", office.user_add),
    ("list", office.user_list),
    ("set", office.user_set),
    ("disable", office.user_disable),
    ("enable", office.user_enable),
):
    user_app.command(_name)(_command)
app.add_typer(office.token_app, name="token")
console = Console()
err = Console(stderr=True)


_fail = office.fail


# The CLI is run by the operator on the server itself: it acts as the system.
SYSTEM_CLI = Actor(name="cli", role="system")


def _parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        err.print(f"[red]error:[/red] {option}: 日期格式应为 YYYY-MM-DD / not a date: {text!r}")
        raise typer.Exit(2) from None


def _engine() -> Engine:
    try:
        return build_engine(migrated=True)
    except RedressError as exc:
        _fail(exc)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (creates the SQLite file under ./var/ if needed)."""
    engine = build_engine()
    upgrade(engine.db.engine)
    console.print(f"database at revision {current(engine.db.engine)} ({engine.db.dialect})")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision."""
    console.print(current(build_engine().db.engine) or "(empty)")


@app.command()
def demo(
    if_empty: Annotated[bool, typer.Option(help="Do nothing if data is already there.")] = False,
) -> None:
    """Load demo departments, staff, records and cases in every state, and print them."""
    engine = build_engine()
    upgrade(engine.db.engine)
    notes = Path(get_settings().var_dir) / "demo.txt"
    with engine.db.read() as conn:
        loaded = conn.execute(sa.text("SELECT count(*) FROM departments")).scalar_one()
    if loaded:
        if if_empty:
            console.print(
                "demo data is already loaded"
                + (f"; tokens and access codes: {notes}" if notes.exists() else "")
            )
            if notes.exists():
                _try_it(notes)
            return
        err.print("the database already has data; use an empty database for the demo")
        raise typer.Exit(2)
    try:
        staff, cases = load_demo(engine)
    except RedressError as exc:
        _fail(exc)
    table = Table(title="demo cases / 演示案件")
    for col in ("case number", "access code", "procedure", "version", "state"):
        table.add_column(col)
    for c in cases:
        table.add_row(c.case_no, c.access_code, c.procedure, str(c.version), c.state)
    console.print(table)
    users = Table(title="staff tokens / 工作人员令牌 (shown once)")
    users.add_column("user")
    users.add_column("token")
    for name in (
        "office_handler",
        "office_reviewer",
        "office_head",
        "amr_handler",
        "amr_reviewer",
        "amr_lead_department",
        "office_task_group",
        "office_leading_group",
        "office_admin",
    ):
        users.add_row(name, staff.tokens[name])
    console.print(users)
    lines = [f"{n}\t{t}" for n, t in staff.tokens.items()]
    lines += [f"{c.case_no}\t{c.access_code}\t{c.procedure}\t{c.state}" for c in cases]
    notes.parent.mkdir(parents=True, exist_ok=True)
    notes.write_text("\n".join(lines) + "\n", encoding="utf-8")
    console.print(f"saved to {notes} (development data only)")
    _try_it(notes)


def _try_it(notes: Path) -> None:
    """A handler's token and a sample case with its access code, ready to paste."""
    rows = [line.split("\t") for line in notes.read_text(encoding="utf-8").splitlines()]
    tokens = {r[0]: r[1] for r in rows if len(r) == 2}
    cases = [r for r in rows if len(r) == 4]
    sample = next((r for r in cases if r[3] == "awaiting_supplement"), cases[0])
    verifying = next((r for r in cases if r[3] == "submitted"), cases[0])
    base = "http://127.0.0.1:8000"
    console.print(
        "\n[bold]Try it / 试一试[/bold]\n"
        f"  handler token (office_handler): {tokens['office_handler']}\n"
        f"  sample case: {sample[0]}  access code: {sample[1]}  ({sample[2]}, {sample[3]})\n"
        f"  curl -H 'X-Access-Code: {sample[1]}' {base}/api/v1/status/{sample[0]}\n"
        f"  curl -H 'Authorization: Bearer {tokens['office_handler']}' "
        f"'{base}/api/v1/cases?case_no={verifying[0]}'\n"
        f"  API docs: {base}/docs\n",
        soft_wrap=True,
    )


def _problems_out(source: str, problems: list[Problem], lang: str) -> None:
    for p in problems:
        where = f"{source}:{p.line or 1}:{p.column or 1}"
        first, second = (p.zh, p.en) if lang == "zh" else (p.en, p.zh)
        err.print(f"{where} {p.where}: {first}", highlight=False, soft_wrap=True, markup=False)
        err.print(f"    {second}", highlight=False, soft_wrap=True, markup=False)


@procedures_app.command("validate")
def procedures_validate(
    files: Annotated[list[Path], typer.Argument(help="Procedure files (YAML).")],
    lang: Annotated[str, typer.Option(help="zh or en first")] = "zh",
) -> None:
    """Check procedure files: every problem at once, each with file, line, column and path."""
    cat = definition_catalog(get_settings().extra_roles)
    bad = 0
    for path in files:
        checked = check_file(path, cat)
        if checked.ok and checked.spec is not None:
            s = checked.spec
            console.print(
                f"[green]{path}[/green]: 有效 / valid — {s.name} v{s.version} "
                f"({s.jurisdiction}, {s.effective_from})",
                highlight=False,
                soft_wrap=True,
            )
            continue
        bad += 1
        _problems_out(str(path), checked.problems, lang)
        err.print(
            f"{path}: {len(checked.problems)} 处问题 / problem(s)", style="red", highlight=False
        )
    if bad:
        raise typer.Exit(1)


@procedures_app.command("schema")
def procedures_schema() -> None:
    """Print the JSON Schema of a procedure file (for an editor's YAML/JSON validation)."""
    typer.echo(json.dumps(procedure_json_schema(), ensure_ascii=False, indent=2))


@procedures_app.command("deploy")
def procedures_deploy(
    file: Annotated[Path, typer.Argument(help="A procedure file (YAML).")],
    effective_from: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD; overrides the file's effective_from")
    ] = None,
    jurisdiction: Annotated[
        str | None, typer.Option(help="Overrides the file's jurisdiction")
    ] = None,
    lang: Annotated[str, typer.Option(help="zh or en first")] = "zh",
) -> None:
    """Store a procedure version in the database; running processes use it without a restart."""
    engine = _engine()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"[red]error:[/red] 无法读取 / cannot read {file}: {exc}")
        raise typer.Exit(2) from None
    start = _parse_day(effective_from, "--effective-from") if effective_from else None
    try:
        done = engine.deploy_procedure(
            text,
            SYSTEM_CLI,
            source=str(file),
            effective_from=start,
            jurisdiction=jurisdiction,
        )
    except InvalidDefinition as exc:
        _problems_out(str(file), exc.problems, lang)
        raise typer.Exit(1) from None
    except RedressError as exc:
        _fail(exc)
    s = done.stored
    what = f"{s.name} v{s.version} ({s.jurisdiction}, 自 {s.effective_from} 起 / from)"
    if done.created:
        console.print(
            f"已部署 / deployed: {what} sha256 {s.sha256[:12]}", highlight=False, soft_wrap=True
        )
    else:
        console.print(
            f"未更改 / unchanged: {what} 已以相同内容部署 / already deployed with this content",
            highlight=False,
            soft_wrap=True,
        )


def _stored_pair(engine: Engine, name: str, ref: str, jurisdiction: str) -> Procedure:
    j, _, v = ref.rpartition(":")
    if not v.isdigit():
        err.print(
            f"[red]error:[/red] 版本应为数字或“辖区:数字” / a version is N or J:N, not {ref!r}"
        )
        raise typer.Exit(2)
    try:
        return engine.procedures.by_id(engine.procedures.find(name, int(v), j or jurisdiction).id)
    except RedressError as exc:
        _fail(exc)


@procedures_app.command("diff")
def procedures_diff(
    name: str,
    old: Annotated[str, typer.Argument(help="A version: N, or JURISDICTION:N")],
    new: Annotated[str, typer.Argument(help="A version: N, or JURISDICTION:N")],
    jurisdiction: Annotated[str, typer.Option(help="For versions given as N")] = "default",
) -> None:
    """What changed between two deployed versions: states, triggers, timers and periods."""
    engine = _engine()
    a = _stored_pair(engine, name, old, jurisdiction)
    b = _stored_pair(engine, name, new, jurisdiction)
    changes = diff_specs(a.spec, b.spec)
    if not changes:
        console.print("无差异 / no differences")
    for c in changes:
        style = {"+": "green", "-": "red", "~": "yellow"}[c.kind]
        console.print(str(c), style=style, highlight=False, soft_wrap=True, markup=False)


@procedures_app.command("list")
def procedures_list() -> None:
    """List every deployed procedure version: jurisdiction, effective dates, hash."""
    engine = _engine()
    table = Table()
    for col in ("name", "v", "jurisdiction", "from", "until", "sha256", "by"):
        table.add_column(col, overflow="fold")
    for s, _ in engine.procedures.latest():
        table.add_row(
            s.name,
            str(s.version),
            s.jurisdiction,
            str(s.effective_from),
            str(s.effective_until or "—"),
            s.sha256[:10],
            s.deployed_by,
        )
    console.print(table)


@procedures_app.command("show")
def procedures_show(
    name: str,
    version: Annotated[int | None, typer.Option(help="Version (default: the newest).")] = None,
    jurisdiction: Annotated[str, typer.Option(help="Jurisdiction")] = "default",
    mermaid: Annotated[bool, typer.Option(help="Print a Mermaid state diagram.")] = False,
    lang: Annotated[str, typer.Option(help="zh or en")] = "zh",
) -> None:
    """Show a deployed procedure's states and triggers, or its Mermaid diagram."""
    engine = _engine()
    rows = [
        s for s in engine.procedures.stored() if s.name == name and s.jurisdiction == jurisdiction
    ]
    if version is not None:
        rows = [s for s in rows if s.version == version]
    if not rows:
        which = f"{name} v{version}" if version else name
        err.print(
            f"[red]error:[/red] 没有该程序版本 / {jurisdiction}: no version {version or ''} "
            f"of {which}"
        )
        raise typer.Exit(2)
    proc = engine.procedures.by_id(max(rows, key=lambda s: s.version).id)
    if mermaid:
        typer.echo(proc.mermaid(lang))
        return
    console.print(
        f"[bold]{proc.spec.title.get(lang)}[/bold] {name} v{proc.version} ({jurisdiction}, "
        f"{proc.spec.effective_from} – {proc.spec.effective_until or ''})"
    )
    table = Table()
    for col in ("trigger", "from", "to", "roles", "required", "notices", "effect"):
        table.add_column(col)
    for t in proc.spec.triggers:
        table.add_row(
            t.name,
            ", ".join(t.sources),
            t.dest,
            ", ".join(t.roles),
            ", ".join(t.required),
            ", ".join(t.notices),
            t.effect or "",
        )
    console.print(table)


@cases_app.command("migrate")
def cases_migrate(
    procedure: Annotated[str, typer.Option(help="Procedure name, e.g. objection")],
    from_version: Annotated[int, typer.Option("--from", help="The version cases run now")],
    to_version: Annotated[int, typer.Option("--to", help="The version to move them to")],
    jurisdiction: Annotated[str, typer.Option(help="Jurisdiction of both versions")] = "default",
    mapping: Annotated[
        list[str] | None, typer.Option("--map", help="OLD=NEW for a state the target renamed")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan; change nothing")] = False,
) -> None:
    """Move open cases to another deployed version, re-evaluating every live deadline."""
    from rich.progress import Progress

    from engine.migration import Migrations

    pairs: dict[str, str] = {}
    for item in mapping or []:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            err.print(f"[red]error:[/red] --map 应为 旧=新 / --map takes OLD=NEW, not {item!r}")
            raise typer.Exit(2)
        pairs[old] = new
    migrations = Migrations(_engine())
    try:
        plan = migrations.plan(procedure, jurisdiction, from_version, to_version, pairs)
    except RedressError as exc:
        _fail(exc)
    table = Table(title=f"{procedure} ({jurisdiction}) v{from_version} → v{to_version}")
    for col in ("state", "→", "cases"):
        table.add_column(col)
    for old, (new, n) in plan.states.items():
        mark = " [red](无对应状态 / no counterpart)[/red]" if old in plan.refused else ""
        table.add_row(old, new + mark, str(n))
    console.print(table)
    timers = Table(title="deadlines / 期限")
    for col in ("timer", "change", "from", "to", "cases"):
        timers.add_column(col)
    for tp in plan.timers:
        timers.add_row(
            tp.name, tp.change, tp.old_period or "—", tp.new_period or "—", str(tp.cases)
        )
    console.print(timers)
    if not plan.ok:
        err.print(
            f"[red]拒绝迁移 / refused:[/red] 状态 {', '.join(plan.refused)} 在第{to_version}版中"
            "没有对应状态，请用 --map 旧=新 指定 / no counterpart: map each with --map OLD=NEW"
        )
        raise typer.Exit(1)
    if dry_run:
        console.print(f"试运行 / dry run: {len(plan.case_ids)} 件案件将迁移 / cases would move")
        return
    with Progress(console=console) as progress:
        task = progress.add_task("迁移 / migrating", total=len(plan.case_ids))
        try:
            result = migrations.run(plan, SYSTEM_CLI, progress=lambda n: progress.advance(task, n))
        except RedressError as exc:
            _fail(exc)
    console.print(
        f"已迁移 / migrated: {result.migrated}; 跳过 / skipped (already moved): {result.skipped}"
    )


@audit_app.command("access")
def audit_access(
    case: Annotated[str | None, typer.Option(help="Only this case (its number or id)")] = None,
    user: Annotated[str | None, typer.Option(help="Only this staff member's views")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100000)] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """Who saw what: staff views of personal data (case pages, attachments, notices, records,
    searches by identifier), newest first. The log is append-only."""
    engine = _engine()
    case_id = None
    if case is not None:
        with engine.db.tx(readonly=True) as tx:
            found = tx.scalar(
                "SELECT id FROM cases WHERE case_no = :c OR CAST(id AS TEXT) = :c", {"c": case}
            )
        if found is None:
            err.print(f"[red]error:[/red] 没有案件“{case}” / no case {case!r}")
            raise typer.Exit(2)
        case_id = int(found)
    rows = access.entries(engine, SYSTEM_CLI, case_id=case_id, user=user, limit=limit)
    if as_json:
        for r in rows:
            typer.echo(json.dumps({**r, "at": r["at"].isoformat()}, ensure_ascii=False))
        return
    zone = ZoneInfo(engine.settings.timezone)
    table = Table(title="access log / 查看记录")
    for col in ("at", "who", "role", "what", "case", "record", "detail", "via", "client"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            f"{r['at'].astimezone(zone):%Y-%m-%d %H:%M:%S}",
            r["actor"],
            r["role"],
            r["what"],
            r["case_no"] or "",
            str(r["record_id"] or ""),
            r["detail"],
            r["channel"],
            r["client"],
        )
    console.print(table)


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk every case's event chain; name the first broken link of each case."""
    problems = _engine().verify_audit()
    if not problems:
        console.print("audit ok: every event chain verifies")
        return
    for p in problems:
        err.print(f"case {p.case_no} (id {p.case_id}): event {p.seq}: {p.problem}")
    raise typer.Exit(1)


@secret_app.command("init")
def secret_init(
    if_missing: Annotated[bool, typer.Option(help="Keep an existing key file.")] = False,
) -> None:
    """Write a random secret key to var/secret.key (read when REDRESS_SECRET_KEY is unset).

    Tokens and access codes are hashed with this key: replacing it invalidates them all."""
    settings = get_settings()
    path = secret_key_path(settings.var_dir)
    if path.exists():
        if if_missing:
            console.print(f"secret key kept: {path}")
            return
        err.print(
            f"error: {path} exists; replacing it would invalidate every token and access code"
        )
        raise typer.Exit(2)
    write_secret_key(path)
    get_settings.cache_clear()
    console.print(f"secret key written: {path}")


def forwarded_options(settings: Settings) -> tuple[bool, str | None]:
    """(proxy_headers, forwarded_allow_ips) for uvicorn. Forwarded headers are believed only
    from the proxies the settings name: by default uvicorn trusts them from 127.0.0.1, and a
    client on the same host could then choose its own address for the wrong-code guard."""
    proxies = settings.trusted_proxies
    return bool(proxies), ",".join(proxies) or None


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    interval: Annotated[
        float | None, typer.Option(help="Seconds between engine rounds (default 30).")
    ] = None,
    engine_loop: Annotated[
        bool, typer.Option(help="Run sweeps and deliveries here (off when workers do it).")
    ] = True,
    workers: Annotated[
        int,
        typer.Option(min=1, max=64, help="API worker processes (PostgreSQL only)."),
    ] = 1,
) -> None:
    """Run the HTTP server and, by default, the engine loop (sweep + delivery flows).

    With --workers N (PostgreSQL), N API processes share the port; the engine loop and
    Prefect's API run once, here in the supervisor, and every worker's /readyz reads the
    loop's heartbeat; /metrics adds up every worker's samples."""
    import uvicorn

    from api.app import create_app, settle_heap
    from workflows import runtime
    from workflows.loop import EngineLoop
    from workflows.prefect_child import PrefectChild, PrefectUnavailable

    settings = get_settings()
    try:
        check_secret(settings)
    except InsecureSettings as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    # SIGTERM while starting (before uvicorn takes the signals over): unwind through `finally`.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    engine = build_engine()
    if workers > 1 and engine.db.dialect != "postgresql":
        err.print(
            "[red]error:[/red] --workers 需要 PostgreSQL（SQLite 只有一个写入者）/ "
            "--workers needs PostgreSQL (SQLite has one writer, queued in one process)"
        )
        raise typer.Exit(2)
    run_dir = settings.var_dir / "run"
    heartbeat = run_dir / f"engine-loop-{port}.json" if workers > 1 else None
    prefect: PrefectChild | None = None
    loop = None
    try:
        upgrade(engine.db.engine)
        Deadlines(engine).refresh_calendar()
        runtime.use(engine)
        if engine_loop:
            # Before Prefect is imported here: the flows then talk to this child.
            prefect = PrefectChild(settings.var_dir / "prefect" / "server.log")
            try:
                prefect.start()
            except PrefectUnavailable as exc:
                err.print(f"[red]error:[/red] {exc}")
                raise typer.Exit(1) from None
            loop = EngineLoop(
                interval or settings.engine_interval,
                before_round=prefect.ensure,
                heartbeat=heartbeat,
            )
            loop.start()
        note = f"; engine loop every {loop.interval:g}s" if loop else ""
        console.print(
            f"redress on http://{host}:{port} ({engine.db.dialect}); "
            f"health: http://{host}:{port}/healthz, readiness: /readyz{note}"
        )
        proxy_headers, allow_ips = forwarded_options(settings)
        options: dict[str, Any] = {
            "host": host,
            "port": port,
            "log_level": "info",
            "proxy_headers": proxy_headers,
            "forwarded_allow_ips": allow_ips,
            # SIGTERM: stop accepting, answer what is in flight for up to this long.
            "timeout_graceful_shutdown": GRACE_SECONDS,
        }
        if workers > 1:
            _prepare_workers(run_dir / f"metrics-{port}", heartbeat if loop else None)
            uvicorn.run("api.app:worker_app", factory=True, workers=workers, **options)
        else:
            app = create_app(engine)
            app.state.engine_loop = loop
            settle_heap()
            uvicorn.run(app, **options)
    finally:
        # Between timers: the loop finishes the flow it is in (a sweep commits per timer).
        if loop is not None:
            loop.stop(timeout=GRACE_SECONDS)
        if prefect is not None:
            prefect.stop()
        engine.db.dispose()


# How long SIGTERM waits for requests in flight, then for the engine loop's current flow.
GRACE_SECONDS = 20


def _prepare_workers(metrics_dir: Path, heartbeat: Path | None) -> None:
    """What the worker processes inherit: a fresh directory for their metrics files, and
    where the supervisor's engine loop beats."""
    import shutil

    shutil.rmtree(metrics_dir, ignore_errors=True)  # a previous run's samples are not ours
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    if heartbeat is not None:
        heartbeat.parent.mkdir(parents=True, exist_ok=True)
        os.environ["REDRESS_LOOP_HEARTBEAT"] = str(heartbeat)
    else:
        os.environ.pop("REDRESS_LOOP_HEARTBEAT", None)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@app.command()
def deploy(
    pool: Annotated[str, typer.Option(help="Prefect work pool (type process).")] = "redress",
    sweep_cron: str = "* * * * *",
    deliver_cron: str = "* * * * *",
) -> None:
    """Deploy both flows with cron schedules to the Prefect server at PREFECT_API_URL."""

    from workflows.deploy import deploy as do_deploy

    if not os.environ.get("PREFECT_API_URL"):
        err.print("error: set PREFECT_API_URL to the Prefect server (see docs/SCALE-OUT.md)")
        raise typer.Exit(2)
    ids = do_deploy(pool, sweep_cron, deliver_cron, get_settings().timezone)
    console.print(f"deployed {len(ids)} flows to pool {pool!r}: {', '.join(ids)}")


@calendar_app.command("load")
def calendar_load(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Load a year's official holiday notice or local days (JSON) and recompute deadlines.

    {"kind": "official", "year": 2027, "source": "国办发明电〔2026〕…号",
     "days": [{"date": "2027-01-01", "kind": "holiday", "name": "元旦"}, ...]}
    kind "local" adds single days on top (no year needed).
    """
    deadlines = Deadlines(_engine())
    try:
        data = read_calendar_file(file.read_text(encoding="utf-8"))
        result = deadlines.load_calendar(data, str(data.get("source") or file.name))
    except RedressError as exc:
        _fail(exc)
    what = f"official notice for {result.year}" if result.year else "local days"
    console.print(f"loaded {what}: {result.days} days; {result.recomputed} deadline(s) recomputed")


@calendar_app.command("show")
def calendar_show(year: int) -> None:
    """List a year's holidays and makeup working days, and whether the year is provisional."""
    cal = Deadlines(_engine()).refresh_calendar()
    provisional = cal.is_provisional_year(year)
    title = f"{year}" + (" — provisional (no official notice loaded)" if provisional else "")
    table = Table(title=title)
    for col in ("date", "weekday", "working", "name", "source"):
        table.add_column(col)
    for day, working, name, source in cal.year_days(year):
        table.add_row(
            day.isoformat(),
            "一二三四五六日"[day.weekday()],
            "上班 working" if working else "休 off",
            name,
            source,
        )
    console.print(table)


@calendar_app.command("due")
def calendar_due(
    start: Annotated[str, typer.Argument(help="Day of the triggering event, YYYY-MM-DD")],
    period: Annotated[str, typer.Argument(help='e.g. "5 working days", "3 months"')],
) -> None:
    """Print the due date of a period; `provisional` after it when no notice covers it."""
    try:
        day = date.fromisoformat(start)
        per = Period.parse(period)
    except ValueError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    due = Deadlines(_engine()).refresh_calendar().add(day, per)
    typer.echo(due.day.isoformat() + (" provisional" if due.provisional else ""))


@app.command()
def sweep(
    now: Annotated[str | None, typer.Option(help="Act as if it were this ISO time.")] = None,
    batch: int = 500,
) -> None:
    """Run one deadline sweep by hand: fire every timer due now (or at --now)."""
    engine = _engine()
    at = None
    if now:
        try:
            at = datetime.fromisoformat(now)
        except ValueError as exc:
            err.print(f"error: --now: {exc}")
            raise typer.Exit(2) from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=ZoneInfo(get_settings().timezone))
    result = Deadlines(engine).sweep(now=at, batch=batch)
    typer.echo(json.dumps(asdict(result), ensure_ascii=False))
    if result.errors:
        raise typer.Exit(1)


@app.command("version")
def version_cmd() -> None:
    """Print versions."""
    typer.echo(json.dumps({"redress": "0.1.0"}))


if __name__ == "__main__":  # pragma: no cover
    app()
