"""Delivery channels: where an outbox message goes. Each returns what the provider answered.

A channel never raises for a refusal by the other side; it returns `Sent(ok=False, ...)` so the
attempt is recorded and retried. Exceptions mean the channel itself failed (treated the same).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

log = logging.getLogger("redress.outbox")


@dataclass(frozen=True)
class Message:
    id: int
    kind: str
    name: str
    recipient: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int
    case_id: int | None
    record_id: int | None
    channel: str | None = None
    # Filled in for notices and staff messages: the stored letter, as sent.
    subject: str = ""
    body_html: str = ""
    body_text: str = ""
    notice_id: int | None = None


@dataclass(frozen=True)
class Sent:
    ok: bool
    answer: str
    message_id: str | None = None


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> Sent: ...


def signed_post(client: httpx.Client, url: str, secret: bytes, body: bytes, key: str) -> Sent:
    """POST a JSON body with an HMAC-SHA256 signature and an idempotency key; 2xx is success."""
    signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
    try:
        response = client.post(
            url,
            content=body,
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": key,
                "X-Redress-Signature": f"sha256={signature}",
            },
        )
    except httpx.HTTPError as exc:
        return Sent(False, f"{type(exc).__name__}: {exc}")
    answer = f"{response.status_code} {response.text[:500]}"
    ok = 200 <= response.status_code < 300
    return Sent(ok, answer, response.headers.get("X-Message-Id") if ok else None)


class LogChannel:
    """Writes the message to the log. For development, and for kinds with no channel yet."""

    name = "log"

    def send(self, message: Message) -> Sent:
        log.info(
            "outbox %s %s → %s: %s",
            message.kind,
            message.name,
            message.recipient,
            json.dumps(message.payload, ensure_ascii=False),
        )
        return Sent(True, "logged", f"log-{message.id}")


class WebhookChannel:
    """HTTP POST of the message as JSON, signed with HMAC-SHA256, with an idempotency header.

    The receiver can drop a repeat by the `Idempotency-Key` header: delivery is at least once
    (a crash between the POST and recording it sends again), never "at most once".
    """

    name = "webhook"

    def __init__(
        self, url: str, secret: str, timeout: float = 10.0, client: httpx.Client | None = None
    ) -> None:
        self.url = url
        self.secret = secret.encode()
        self.client = client or httpx.Client(timeout=timeout)

    def send(self, message: Message) -> Sent:
        body = json.dumps(
            {
                "id": message.id,
                "kind": message.kind,
                "name": message.name,
                "recipient": message.recipient,
                "payload": message.payload,
            },
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        return signed_post(self.client, self.url, self.secret, body, message.idempotency_key)


class InAppChannel:
    """The applicant's status page shows the stored notice; delivering is recording it."""

    name = "inapp"

    def send(self, message: Message) -> Sent:
        return Sent(True, "stored for the status page", f"notice-{message.notice_id}")


class EmailChannel:
    """Mail over SMTP (STARTTLS and login when configured). The Message-ID is derived from
    the idempotency key, so a repeat is recognisable as the same message downstream."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.username, self.password = starttls, username, password
        self.timeout = timeout

    def send(self, message: Message) -> Sent:
        import smtplib
        from email.message import EmailMessage
        from email.utils import formatdate

        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = message.recipient
        msg["Subject"] = message.subject
        msg["Date"] = formatdate(localtime=False)
        digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
        msg["Message-ID"] = f"<{digest}@redress>"
        msg["X-Redress-Key"] = message.idempotency_key
        msg.set_content(message.body_text or message.subject)
        if message.body_html:
            msg.add_alternative(f"<html><body>{message.body_html}</body></html>", subtype="html")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            return Sent(False, f"{type(exc).__name__}: {exc}")
        if refused:
            return Sent(False, f"refused: {refused}")
        return Sent(True, "250 accepted", msg["Message-ID"])


class SmsChannel:
    """SMS through an HTTP gateway: a signed JSON POST of the number and a short text."""

    name = "sms"

    def __init__(
        self, url: str, secret: str, timeout: float = 10.0, client: httpx.Client | None = None
    ) -> None:
        self.url = url
        self.secret = secret.encode()
        self.client = client or httpx.Client(timeout=timeout)

    def send(self, message: Message) -> Sent:
        text = message.subject
        body = json.dumps(
            {"to": message.recipient, "text": text},
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        return signed_post(self.client, self.url, self.secret, body, message.idempotency_key)
