import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import DbDep, RedisDep, TemporalDep
from models.api import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
async def health(db: DbDep, redis: RedisDep, temporal: TemporalDep) -> JSONResponse:
    """Reachability of Postgres, Redis and Temporal; 503 when any is down."""
    async def check(name: str, probe) -> tuple[str, str]:
        try:
            await asyncio.wait_for(probe, timeout=3)
            return name, "ok"
        except Exception as failure:
            return name, f"unavailable: {type(failure).__name__}"

    results = dict(await asyncio.gather(
        check("postgres", db.execute(text("SELECT 1"))),
        check("redis", redis.ping()),
        check("temporal", temporal.service_client.check_health()),
    ))
    healthy = all(v == "ok" for v in results.values())
    body = HealthResponse(status="ok" if healthy else "degraded", checks=results)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
