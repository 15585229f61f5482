"""Settings from REDRESS_* environment variables (and ./.env), read once and cached."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REDRESS_", env_file=".env", extra="ignore")

    # SQLite under ./var/ is the embedded default; PostgreSQL (postgresql://...) in production.
    database_url: str = Field(default_factory=lambda: f"sqlite:///{ROOT / 'var' / 'redress.db'}")
    timezone: str = "Asia/Shanghai"
    # Roles this installation declares on top of the built-in ones (handler, reviewer, head,
    # ...): a procedure file may name only declared roles. JSON list in the environment,
    # e.g. REDRESS_EXTRA_ROLES='["lead_department", "task_group", "leading_group", "inspector"]'.
    # The default declares the three the built-in identification procedure names (牵头部门,
    # 专责小组, 领导小组; seed 000 item 2); a list that leaves one out makes `db upgrade` refuse
    # that procedure, naming the role.
    extra_roles: tuple[str, ...] = ("lead_department", "task_group", "leading_group")
    # Operators' calendar data (official notices and local days), a JSON file per load.
    var_dir: Path = ROOT / "var"
    # How long a SQLite writer waits for the lock before failing (ms).
    sqlite_busy_timeout_ms: int = 30000
    # SQLite reads the database through a memory map of up to this many bytes (0: off).
    # Without it every page not in the connection's own 2 MiB cache is a pread system call;
    # at 1,000,000 cases a status look-up cost ~12% less server CPU with it (BENCHMARKS.md).
    # SQLite's build caps it (2 GiB by default); writes still go through the WAL.
    sqlite_mmap_bytes: int = 2**31 - 2**16
    pool_size: int = 10
    # SQLite: the most API commands committed together by the write lane (engine/lane.py).
    # Measured with 16 clients: 1 → 603 advances/s, 8 → 815, 64 → 930 (docs/BENCHMARKS.md).
    write_group_max: int = 64
    # FastAPI's own OpenTelemetry spans, metrics and logs (when a provider is configured):
    # off by default, as redress exports Prometheus metrics at /metrics. On, every request
    # goes through FastAPI's routing, so that each is traced (api/app.py).
    otel: bool = False
    # Applicant access codes and user tokens are hashed with this pepper, and session cookies
    # signed with it. Unset, it is read from var/secret.key (`redress secret init`, run by
    # `make run`). The server refuses to start without a strong key unless `dev_mode`.
    secret_key: str = ""
    # Development only: allows the well-known development key (never in production).
    dev_mode: bool = False
    # Proxies (IP addresses) whose X-Forwarded-For / X-Forwarded-Proto are believed. Empty: the
    # client is the TCP peer, so a forged header cannot choose the client for the wrong-code
    # guard. Behind nginx on the same host: ["127.0.0.1"].
    trusted_proxies: list[str] = []
    # The public credit platform's endpoint for record changes; unset: logged only.
    platform_url: str | None = None
    # Key for the HMAC signature on webhook deliveries; unset, one derived from secret_key.
    webhook_secret: str = ""
    # How often `redress serve` runs the sweep and the outbox delivery (seconds).
    engine_interval: float = 30.0
    # How notices reach applicants besides their status page: mail and/or SMS where they gave
    # an address (``REDRESS_APPLICANT_CHANNELS='["email"]'``).
    applicant_channels: list[str] = ["email", "sms"]
    # Mail (SMTP) and the SMS gateway (HTTP POST, HMAC-signed like webhooks).
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "redress@localhost"
    smtp_timeout: float = 10.0
    sms_url: str | None = None
    # Uploads: largest file, and the types accepted (checked against the file's first bytes).
    max_upload_bytes: int = 10 * 1024 * 1024
    # Applicants' wrong access codes, per client: slowed after `slow_after`, refused after
    # `lock_after` within `lock_window_s` seconds.
    access_slow_after: int = 3
    access_lock_after: int = 10
    access_lock_window_s: int = 900
    # Wrong codes from one client over every case before even its wrong codes are refused
    # (a right code never is, on a case not attacked itself): far above the per-case bound,
    # as offices and mobile networks put many applicants behind one address.
    access_client_lock_after: int = 100
    # Staff bearer tokens expire after this many days (`redress token add --days` per token).
    token_days: int = Field(90, ge=1, le=3650)
    # Reached over TLS (directly or through a proxy): HSTS and the session cookie's Secure flag.
    behind_https: bool = False
    # Bearer token for /metrics (Prometheus); an admin's staff token is accepted too.
    metrics_token: str | None = None

    @model_validator(mode="after")
    def _keys(self) -> Settings:
        if not self.secret_key:
            path = secret_key_path(self.var_dir)
            if path.is_file():
                self.secret_key = path.read_text(encoding="utf-8").strip()
            elif self.dev_mode:
                self.secret_key = DEV_SECRET_KEY
        if not self.webhook_secret and self.secret_key:
            self.webhook_secret = hmac.new(
                self.secret_key.encode(), b"webhook", hashlib.sha256
            ).hexdigest()
        return self


# The development key: known to everyone, so a server outside dev_mode refuses it.
DEV_SECRET_KEY = "dev-only-change-me"
MIN_SECRET_LENGTH = 32


class InsecureSettings(RuntimeError):
    """The server would run with a key anyone could know."""


def secret_key_path(var_dir: Path) -> Path:
    return Path(var_dir) / "secret.key"


def check_secret(settings: Settings) -> None:
    """Refuse a missing, well-known or short secret key outside development mode: with it,
    anyone could sign a session cookie as any user."""
    key = settings.secret_key
    if settings.dev_mode:
        return
    if not key:
        raise InsecureSettings(
            "no secret key: set REDRESS_SECRET_KEY or run `redress secret init` "
            "(REDRESS_DEV_MODE=true allows a development key)"
        )
    if key == DEV_SECRET_KEY or len(key) < MIN_SECRET_LENGTH:
        raise InsecureSettings(
            f"REDRESS_SECRET_KEY is the development key or shorter than {MIN_SECRET_LENGTH} "
            "characters: set a random one (`redress secret init` writes var/secret.key) or "
            "REDRESS_DEV_MODE=true for development"
        )


def new_secret_key() -> str:
    return secrets.token_urlsafe(48)


@cache
def get_settings() -> Settings:
    return Settings()
