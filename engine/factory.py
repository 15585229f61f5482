"""Building the engine from settings: one place that knows how the parts fit together."""

from __future__ import annotations

from engine.channels import (
    Channel,
    EmailChannel,
    InAppChannel,
    LogChannel,
    SmsChannel,
    WebhookChannel,
)
from engine.clock import Clock
from engine.db import Database
from engine.migrate import current, head
from engine.outbox import Delivery, router
from engine.service import Engine
from engine.settings import get_settings
from states.errors import RedressError


def build_engine(
    url: str | None = None, *, clock: Clock | None = None, migrated: bool = False
) -> Engine:
    """The engine on the configured database; `migrated=True` refuses an outdated schema."""
    settings = get_settings()
    engine = Engine(Database(url or settings.database_url), clock=clock)
    if migrated:
        rev, want = current(engine.db.engine), head()
        if rev != want:
            raise RedressError(
                f"the database is at revision {rev or '(empty)'}, the code needs {want}: "
                "run `redress db upgrade`",
                f"数据库版本为{rev or '（空）'}，需要{want}：请先运行 redress db upgrade",
            )
    return engine


def build_delivery(engine: Engine) -> Delivery:
    """Channels by message kind, from settings (real mail and SMS come with the notices)."""
    settings = get_settings()
    channels: dict[str, Channel] = {"log": LogChannel(), "inapp": InAppChannel()}
    by_kind: dict[str, str] = {}
    if settings.smtp_host:
        channels["email"] = EmailChannel(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout,
        )
    if settings.sms_url:
        channels["sms"] = SmsChannel(settings.sms_url, settings.webhook_secret)
    if settings.platform_url:
        channels["platform"] = WebhookChannel(settings.platform_url, settings.webhook_secret)
        by_kind["platform_sync"] = "platform"
    return Delivery(engine, router(channels, by_kind))
