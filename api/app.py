"""The FastAPI application. The API issue fills in the routers; for now, health."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from engine.service import Engine


def create_app(engine: Engine) -> FastAPI:
    app = FastAPI(title="redress", version="0.1.0")
    app.state.engine = engine

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        with engine.db.read() as conn:
            conn.execute(sa.text("SELECT 1"))
        return {"status": "ok", "database": engine.db.dialect}

    return app
