"""Settings from REDRESS_* environment variables (and ./.env), read once and cached."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REDRESS_", env_file=".env", extra="ignore")

    # SQLite under ./var/ is the embedded default; PostgreSQL (postgresql://...) in production.
    database_url: str = Field(default_factory=lambda: f"sqlite:///{ROOT / 'var' / 'redress.db'}")
    timezone: str = "Asia/Shanghai"
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
    # Applicant access codes and user tokens are hashed with this pepper.
    secret_key: str = "dev-only-change-me"
    # The public credit platform's endpoint for record changes; unset: logged only.
    platform_url: str | None = None
    # Key for the HMAC signature on webhook deliveries.
    webhook_secret: str = "dev-only-change-me"
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


@cache
def get_settings() -> Settings:
    return Settings()
