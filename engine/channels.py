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


@dataclass(frozen=True)
class Sent:
    ok: bool
    answer: str
    message_id: str | None = None


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> Sent: ...


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
        signature = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        try:
            response = self.client.post(
                self.url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": message.idempotency_key,
                    "X-Redress-Signature": f"sha256={signature}",
                },
            )
        except httpx.HTTPError as exc:
            return Sent(False, f"{type(exc).__name__}: {exc}")
        answer = f"{response.status_code} {response.text[:500]}"
        if 200 <= response.status_code < 300:
            return Sent(True, answer, response.headers.get("X-Message-Id"))
        return Sent(False, answer)
