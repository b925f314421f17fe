# The product image: the API, the worker and the migrations, nothing of `local/`, the tests or
# the benchmarks, and never a `.env` (see .dockerignore). It runs as an unprivileged user.
FROM python:3.11-slim AS product
WORKDIR /app
COPY pyproject.toml alembic.ini settings.py worker.py database.py ./
COPY api ./api
COPY activities ./activities
COPY agent_graphs ./agent_graphs
COPY billing ./billing
COPY bot_adapter ./bot_adapter
COPY conversation ./conversation
COPY limits ./limits
COPY migrations ./migrations
COPY models ./models
COPY operations ./operations
COPY observability ./observability
COPY platform_linking ./platform_linking
COPY sandbox ./sandbox
COPY stream_relay ./stream_relay
COPY tools ./tools
COPY workflows ./workflows
COPY workspace ./workspace
RUN pip install --no-cache-dir . && useradd --create-home --uid 10001 copilot \
    && mkdir -p /app/.data/workspace && chown -R copilot /app/.data
USER copilot
EXPOSE 8000
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000", "--log-config", "api/logging.json"]

# The offline model for a compose stack without a model key: a development stand-in, built
# only for the `offline-model` service.
FROM product AS offline-model
COPY --chown=copilot local/__init__.py ./local/__init__.py
COPY --chown=copilot local/model ./local/model
CMD ["uvicorn", "local.model.server:app", "--host", "0.0.0.0", "--port", "8001"]

# The default target is the product.
FROM product
