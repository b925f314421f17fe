"""`make dev`: the whole system on loopback, on embedded defaults.

Starts (unless DATABASE_URL / REDIS_URL / TEMPORAL_ADDRESS point elsewhere) PostgreSQL, Redis
and the Temporal dev server with its UI under `.data/`, applies the migrations, then runs the
offline model (when no provider key is set), the offline Stripe sandbox (when no Stripe key is
set), the workers (`WORKER_PROCESSES`, one per core by default) and the API. Ctrl-C stops
everything. A start first stops what a killed launcher left running on the same data
(`local/stack/leftovers.py`), and refuses, naming the port and the variable that moves it, to
start on a port another program holds.
"""

import os
import signal
import sys
import time
from pathlib import Path

from api.auth import issue_token
from database import upgrade_schema
from local.stack.leftovers import LaunchRefused, RunRecord, require_free_port
from local.stack.postgres import EmbeddedPostgres
from local.stack.process import ChildProcess, EmbeddedServer, port_open, wait_until
from local.stack.redis import EmbeddedRedis
from local.stack.temporal import TemporalDevServer
from settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
# Where the data lives and the ports, each overridable (a second stack beside the first, a test).
DATA = Path(os.environ.get("DEV_DATA_DIR", ROOT / ".data")).resolve()
LOGS = DATA / "logs"
API_PORT = int(os.environ.get("API_PORT", "8000"))
OFFLINE_MODEL_PORT = int(os.environ.get("DEV_OFFLINE_MODEL_PORT", "8001"))
OFFLINE_STRIPE_PORT = int(os.environ.get("DEV_OFFLINE_STRIPE_PORT", "8002"))
PG_PORT = int(os.environ.get("DEV_POSTGRES_PORT", "5433"))
REDIS_PORT = int(os.environ.get("DEV_REDIS_PORT", "6380"))
TEMPORAL_PORT = int(os.environ.get("DEV_TEMPORAL_PORT", "7233"))
TEMPORAL_UI_PORT = int(os.environ.get("DEV_TEMPORAL_UI_PORT", "8233"))
# The first worker's Prometheus endpoint; the next workers take the ports after it.
WORKER_METRICS_PORT = int(os.environ.get("WORKER_METRICS_PORT", "9464"))
DEV_USER = "dev-user"
# Worker processes on the one task queue: each is one Python event loop, so one per core.
WORKER_PROCESSES = max(1, int(os.environ.get("WORKER_PROCESSES", "0")) or os.cpu_count() or 1)


# Every signal that asks the launcher to stop. SIGINT too: a shell starting `make dev` in the
# background hands it SIGINT ignored, and Python keeps it so unless told otherwise.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _keep(started: list, record: RunRecord, part: EmbeddedServer | ChildProcess) -> None:
    """Stopped in reverse order at the end; recorded so that the next start stops it should this launcher be killed."""
    started.append(part)
    if isinstance(part, EmbeddedServer):
        record.add(part.name, part.child.pid, part.stop_signal)
    else:
        record.add(part.name, part.pid, signal.SIGTERM)


def main() -> int:
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, _stop)
    started: list = []  # stopped in reverse order
    record = RunRecord(DATA / "run")
    env: dict[str, str] = {}
    # Set in the environment or in `.env`: use that server instead of starting one.
    configured = {name.upper() for name in get_settings().model_fields_set} | set(os.environ)
    # This machine is the developer's own: the published development secret is allowed here.
    env["APP_ENV"] = os.environ.get("APP_ENV", "development")
    # The chat playground on, and logs a person reads (key=value), unless set otherwise.
    for name, value in (("PLAYGROUND_ENABLED", "true"), ("LOG_FORMAT", "kv")):
        if name not in configured:
            env[name] = value
    try:
        record.claim(DATA)
        record.stop_leftovers()
        if "DATABASE_URL" not in configured:
            postgres = EmbeddedPostgres(DATA / "postgres", PG_PORT).start(LOGS / "postgres.log")
            _keep(started, record, postgres)
            env["DATABASE_URL"] = postgres.url
        if "REDIS_URL" not in configured:
            redis = EmbeddedRedis(DATA / "redis", REDIS_PORT).start(LOGS / "redis.log")
            _keep(started, record, redis)
            env["REDIS_URL"] = redis.url
        temporal_ui = os.environ.get("TEMPORAL_UI_URL", "(your Temporal UI)")
        if "TEMPORAL_ADDRESS" not in configured:
            temporal = TemporalDevServer(TEMPORAL_PORT, TEMPORAL_UI_PORT, DATA / "temporal.db").start(LOGS / "temporal.log")
            _keep(started, record, temporal)
            env["TEMPORAL_ADDRESS"] = temporal.address
            temporal_ui = temporal.ui_url
        if "OFFLINE_MODEL_URL" not in configured:
            env["OFFLINE_MODEL_URL"] = f"http://127.0.0.1:{OFFLINE_MODEL_PORT}/v1"
        if "WORKSPACE_DIR" not in configured:
            env["WORKSPACE_DIR"] = str(DATA / "workspace")
        offline_stripe = "STRIPE_API_KEY" not in configured
        if offline_stripe:
            stripe_url = f"http://127.0.0.1:{OFFLINE_STRIPE_PORT}"
            env.update(STRIPE_API_KEY="sk_test_offline", STRIPE_API_BASE=stripe_url,
                       STRIPE_WEBHOOK_SECRET=os.environ.get("STRIPE_WEBHOOK_SECRET", "whsec_offline"),
                       OFFLINE_STRIPE_PUBLIC_URL=stripe_url,
                       OFFLINE_STRIPE_WEBHOOK_URL=f"http://127.0.0.1:{API_PORT}/api/credits/stripe_webhook")
        os.environ.update(env)
        get_settings.cache_clear()
        settings = get_settings()

        upgrade_schema(settings.database_url)
        if settings.uses_offline_model:
            require_free_port(OFFLINE_MODEL_PORT, "the offline model", "DEV_OFFLINE_MODEL_PORT")
            model = ChildProcess("offline-model", [sys.executable, "-m", "uvicorn", "local.model.server:app",
                                                   "--host", "127.0.0.1", "--port", str(OFFLINE_MODEL_PORT)],
                                 LOGS / "offline-model.log", cwd=ROOT)
            _keep(started, record, model)
            wait_until(lambda: port_open(OFFLINE_MODEL_PORT), "offline model", 30, model.process)
        if offline_stripe:
            require_free_port(OFFLINE_STRIPE_PORT, "the offline Stripe sandbox", "DEV_OFFLINE_STRIPE_PORT")
            sandbox = ChildProcess("offline-stripe", [sys.executable, "-m", "uvicorn", "local.stripe.server:app",
                                                      "--host", "127.0.0.1", "--port", str(OFFLINE_STRIPE_PORT)],
                                   LOGS / "offline-stripe.log", cwd=ROOT)
            _keep(started, record, sandbox)
            wait_until(lambda: port_open(OFFLINE_STRIPE_PORT), "offline Stripe", 30, sandbox.process)
        require_free_port(API_PORT, "the API", "API_PORT")
        metrics_ports = [WORKER_METRICS_PORT + index if settings.worker_metrics_port else 0
                         for index in range(WORKER_PROCESSES)]
        for index, port in enumerate(metrics_ports):
            if port:
                require_free_port(port, f"worker {index + 1}'s metrics", "WORKER_METRICS_PORT")
            log = LOGS / ("worker.log" if index == 0 else f"worker-{index + 1}.log")
            _keep(started, record, ChildProcess(f"worker {index + 1}", [sys.executable, "worker.py"], log, cwd=ROOT,
                                                env={"WORKER_METRICS_PORT": str(port)}))
        api = ChildProcess("api", [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
                                   "--port", str(API_PORT), "--log-config", str(ROOT / "api" / "logging.json")],
                           LOGS / "api.log", cwd=ROOT)
        _keep(started, record, api)
        wait_until(lambda: port_open(API_PORT), "api", 60, api.process)

        token = issue_token(settings.jwt_secret, DEV_USER, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        model_line = "offline (built in)" if settings.uses_offline_model else settings.model_endpoint[0]
        stripe_line = f"offline sandbox at {settings.stripe_api_base}" if offline_stripe else "Stripe"
        playground = (f"http://127.0.0.1:{API_PORT}/playground#token={token}" if settings.playground_enabled
                      else "off (PLAYGROUND_ENABLED)")
        metrics = ", ".join([f"http://127.0.0.1:{API_PORT}/metrics",
                             *(f"http://127.0.0.1:{port}/metrics" for port in metrics_ports if port)])
        print(f"""
  Copilot is running.

    Chat         {playground}
    API          http://127.0.0.1:{API_PORT}
    API docs     http://127.0.0.1:{API_PORT}/docs
    Metrics      {metrics}
    Temporal UI  {temporal_ui}
    Model        {model_line}
    Payments     {stripe_line}
    Workers      {WORKER_PROCESSES} (WORKER_PROCESSES)
    Logs         {LOGS}

  Development token (user '{DEV_USER}'):

    export TOKEN={token}

  Ctrl-C stops everything.
""", flush=True)
        while all(part.alive() for part in started):
            time.sleep(0.5)
        crashed = [part.name for part in started if not part.alive()]
        print(f"stopping: {', '.join(crashed)} exited (see {LOGS})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    except LaunchRefused as refused:
        print(f"cannot start: {refused}", file=sys.stderr, flush=True)
        return 1
    finally:
        # A second signal (make relays the one sent to its process group, a supervisor repeats
        # it) must not cut the shutdown short and leave servers running.
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, signal.SIG_IGN)
        for part in reversed(started):
            part.stop()
        record.clear()


if __name__ == "__main__":
    sys.exit(main())
