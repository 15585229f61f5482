"""Response headers that tell browsers to be strict, and attachment downloads.

`SecurityHeaders` adds them to every answer: it wraps the whole application in
`api.app.RedressAPI.__call__`, in front of the hot layer (api/hot.py) and FastAPI's middleware,
so that the hot path's answers carry them too. A header the response sets itself is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.responses import FileResponse
from starlette.types import Message, Scope, Send

from engine.attachments import ascii_filename, clean_filename

# The pages load nothing but /static/app.css: no script, no inline style, nothing from elsewhere.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# /docs and /redoc only: Swagger UI and ReDoc are pages of inline script loading their code,
# styles and fonts from a CDN (FastAPI's defaults), and ReDoc runs a worker from a blob.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS = ("/docs", "/redoc")
HSTS = "max-age=31536000"

Headers = tuple[tuple[bytes, bytes], ...]


def _encode(pairs: dict[str, str]) -> Headers:
    return tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs.items())


class SecurityHeaders:
    """Adds the security headers to each HTTP answer by wrapping its `send` (pure ASGI: no
    extra task or body buffering on the hot path). `wrap` is called once per request."""

    def __init__(self, *, hsts: bool) -> None:
        base = {
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        if hsts:  # only behind TLS: browsers then refuse plain HTTP to this host for a year
            base["Strict-Transport-Security"] = HSTS
        # Static files may be cached; pages and API answers (personal data) never.
        fresh = {"Cache-Control": "no-store"}
        self.static = _encode({**base, "Content-Security-Policy": CSP})
        self.dynamic = _encode({**base, "Content-Security-Policy": CSP, **fresh})
        self.docs = _encode({**base, "Content-Security-Policy": DOCS_CSP, **fresh})

    def headers_for(self, path: str) -> Headers:
        if path.startswith("/static/"):
            return self.static
        if path in DOCS or path.startswith("/docs/"):
            return self.docs
        return self.dynamic

    def wrap(self, scope: Scope, send: Send) -> Send:
        extra = self.headers_for(scope["path"])

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        return send_secured


def content_disposition(filename: str, content_type: str | None = None) -> str:
    """`attachment` with an ASCII `filename=` for old clients and the real name as
    `filename*=UTF-8''…` (RFC 6266 / 8187); the name cleaned as uploads are."""
    name = clean_filename(filename, content_type)
    plain, encoded = ascii_filename(name), quote(name, safe="")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}"


def attachment_response(meta: dict[str, Any], path: Path) -> FileResponse:
    """A stored attachment as a download, never displayed inline, under its stored type: the
    API's and the console's downloads both answer this."""
    content_type = str(meta["content_type"])
    return FileResponse(
        path,
        media_type=content_type,
        headers={
            "Content-Disposition": content_disposition(str(meta["filename"]), content_type),
            "X-Content-Type-Options": "nosniff",
        },
    )
