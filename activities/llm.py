"""One model round: stream a chat completion, relay its parts, return the whole message."""

import asyncio
import logging
import time
from typing import Any, Optional

import httpx
import openai
from openai import AsyncOpenAI
from redis.asyncio import Redis
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from agent_graphs.store import GraphStore
from conversation.builder_prompt import builder_context_prefix, builder_system_prompt_suffix
from conversation.context import ContextCache
from models import keys, ui_stream
from models.turn import ModelMessage, RoundRequest, RoundResult, Usage
from observability import metrics
from observability.tracing import Tracing
from settings import Settings
from stream_relay.publisher import RoundParts, StreamClosed, StreamFull, StreamPublisher, StreamWriter
from stream_relay.round_assembler import ReasoningDelta, RoundAssembler, reasoning_delta, usage_from_chunk
from tools.registry import ToolCatalog, tool_schemas

log = logging.getLogger(__name__)


# Anthropic needs this beta to keep a cached prefix for an hour; its default five minutes needs none.
EXTENDED_CACHE_TTL_BETA = "extended-cache-ttl-2025-04-11"


def is_anthropic_route(model: str) -> bool:
    """OpenRouter's `anthropic/...`, Bedrock's `anthropic.claude-...` and bare `claude-...` ids alike."""
    model = model.lower()
    return "claude" in model or model.startswith("anthropic")


def anthropic_extras(settings: Settings, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
                     extra_body: dict[str, Any]) -> dict[str, str]:
    """Adds the reasoning budget and prompt-cache markers in place; returns the headers they need."""
    if settings.reasoning_max_tokens > 0:
        extra_body["reasoning"] = {"max_tokens": settings.reasoning_max_tokens}
    # Prompt caching: the system prompt and the tool schemas are the stable prefix.
    marker = {"type": "ephemeral", "ttl": settings.prompt_cache_ttl}
    if messages and messages[0]["role"] == "system":
        messages[0] = {**messages[0], "content": [
            {"type": "text", "text": messages[0]["content"], "cache_control": marker}
        ]}
    if tools:
        tools[-1] = {**tools[-1], "cache_control": marker}
    return {"anthropic-beta": EXTENDED_CACHE_TTL_BETA} if settings.prompt_cache_ttl == "1h" else {}


def chosen_model(settings: Settings, request: RoundRequest) -> str:
    """The model id a round calls: the advanced one when the message asked for it, else the
    model of the turn's mode."""
    if request.model == "advanced":
        return settings.advanced_model
    return settings.thinking_model if request.mode == "extended_thinking" else settings.fast_model


def build_request(settings: Settings, request: RoundRequest, history: list[ModelMessage],
                  catalog: ToolCatalog) -> dict[str, Any]:
    """The chat-completions request body, with OpenRouter's extras where they apply."""
    model = chosen_model(settings, request)
    messages = [m.to_openai() for m in history]
    tools = tool_schemas(catalog, request.allowed_tools)
    extra_body: dict[str, Any] = {"usage": {"include": True}}
    headers = anthropic_extras(settings, messages, tools, extra_body) if is_anthropic_route(model) else {}
    body: dict[str, Any] = {
        "model": model, "messages": messages, "stream": True, "max_tokens": settings.model_max_tokens,
        "stream_options": {"include_usage": True}, "extra_body": extra_body,
    }
    if headers:
        body["extra_headers"] = headers
    if tools:
        body["tools"] = tools
    return body


def _provider_failure(error: Exception) -> ApplicationError:
    """Rate limits, server errors and broken streams are retried; other refusals are final."""
    if isinstance(error, openai.APIStatusError):
        retryable = error.status_code == 429 or error.status_code >= 500
        return ApplicationError(
            f"The model provider answered HTTP {error.status_code}.", type="ModelProviderError",
            non_retryable=not retryable,
        )
    if isinstance(error, (openai.APIConnectionError, openai.APITimeoutError, httpx.HTTPError)):
        return ApplicationError("The connection to the model provider broke.", type="ModelProviderError")
    return ApplicationError(f"The model call failed: {type(error).__name__}.", type="ModelProviderError")


def _record_round(model: str, outcome: str, seconds: float, usage: Usage, streamed: dict[str, int]) -> None:
    metrics.MODEL_ROUNDS.labels(model, outcome).inc()
    metrics.MODEL_ROUND_DURATION.labels(model).observe(seconds)
    for kind, count in streamed.items():
        if count:
            metrics.TOKENS_STREAMED.labels(kind).inc(count)
    for kind, count in (("prompt", usage.prompt_tokens), ("completion", usage.completion_tokens),
                        ("cache_read", usage.cache_read_tokens), ("cache_write", usage.cache_write_tokens)):
        if count:
            metrics.MODEL_TOKENS.labels(model, kind).inc(count)
    if usage.cost_microdollars and usage.cost_microdollars > 0:
        metrics.MODEL_COST.labels(model).inc(usage.cost_microdollars)


def _round_outcome(failure: BaseException) -> str:
    """A failed round's outcome label: what the provider answered, not its message."""
    if isinstance(failure, asyncio.CancelledError):
        return "cancelled"  # Stop, or the worker shutting down
    if isinstance(failure, StreamClosed):
        return "stopped"  # Stop closed the turn's stream to the round's parts
    if isinstance(failure, ApplicationError):
        if failure.type == "StreamFull":
            return "stream_full"
        cause = failure.__cause__
        if isinstance(cause, openai.APIStatusError):
            return f"http_{cause.status_code}" if cause.status_code in (429, 500, 502, 503, 504) else "refused"
        return "provider_error"
    return "error"


class ModelActivities:
    def __init__(self, settings: Settings, redis: Redis, context: ContextCache, tools: ToolCatalog,
                 graphs: Optional[GraphStore] = None, tracing: Optional[Tracing] = None):
        self.settings = settings
        self.tracing = tracing or Tracing.off()
        self.tools = tools
        self.redis = redis
        self.context = context
        self.graphs = graphs  # what a builder session's rounds read their graph's snapshot from
        # One writer for every round this worker streams, so concurrent turns share round trips.
        self.writer = StreamWriter(redis, settings.stream_retention_seconds, settings.stream_max_parts)
        base_url, api_key = settings.model_endpoint
        # Retries belong to Temporal (with backoff, visible in the UI), not to the HTTP client.
        self.client = AsyncOpenAI(
            base_url=base_url, api_key=api_key, max_retries=0,
            timeout=httpx.Timeout(settings.llm_round_timeout_seconds, connect=10.0),
        )

    async def _history(self, request: RoundRequest) -> list[ModelMessage]:
        """The conversation, and in a builder session the guide (system prompt) and this round's
        snapshot of its graph (on the latest user message), read afresh every round, so a round
        after an edit sees the version the edit saved."""
        suffix = builder_system_prompt_suffix(request.builder_graph_id)
        prefix = await builder_context_prefix(self.graphs, request.builder_graph_id, request.user_id)
        return await self.context.history(request.session_id, suffix, prefix)

    @activity.defn
    async def stream_model_round(self, request: RoundRequest) -> RoundResult:
        attempt = activity.info().attempt
        publisher = StreamPublisher(self.redis, request.stream_key, self.settings.stream_retention_seconds)
        if attempt > 1:
            # An earlier attempt died mid-stream: close what it left open.
            await publisher.close_open_parts()
        await publisher.publish_once(keys.start_step_part(request.round_index), [ui_stream.start_step()])
        if attempt > 1:
            # Then tell the UI to discard what this round's step showed so far (the README's contract:
            # the parts after the last `start-step`, which is this round's, published above if the
            # dead attempt had not).
            await publisher.publish(ui_stream.data("round-retry", {"round": request.round_index, "attempt": attempt}))

        assembler = RoundAssembler(f"r{request.round_index}a{attempt}")
        # Reading the model never waits on Redis: parts are written in the background, batched
        # by what accumulates during one round trip (see StreamWriter).
        batcher = RoundParts(self.writer, request.stream_key)
        body = build_request(self.settings, request, await self._history(request), self.tools)
        with self.tracing.span("model.call", {"gen_ai.request.model": body["model"], "copilot.round": request.round_index,
                                             "copilot.attempt": attempt}) as span:
            started = time.monotonic()
            streamed = {"text": 0, "reasoning": 0}
            try:
                result = await self._stream_round(request, body, assembler, batcher, streamed)
            except BaseException as failure:
                outcome = _round_outcome(failure)
                span.set_attribute("copilot.outcome", outcome)
                _record_round(body["model"], outcome, time.monotonic() - started, Usage(), streamed)
                raise
            span.set_attributes({"copilot.outcome": "ok", "gen_ai.response.finish_reasons": [result.finish_reason],
                                 "gen_ai.usage.input_tokens": result.usage.prompt_tokens,
                                 "gen_ai.usage.output_tokens": result.usage.completion_tokens,
                                 "copilot.tool_calls": len(result.tool_calls)})
            _record_round(body["model"], "ok", time.monotonic() - started, result.usage, streamed)
            return result

    async def _stream_round(self, request: RoundRequest, body: dict[str, Any], assembler: RoundAssembler,
                            batcher: RoundParts, streamed: dict[str, int]) -> RoundResult:
        usage, finish_reason = Usage(), None
        malformed_reasoning_logged = False
        try:
            async with heartbeating():
                stream = await self.client.chat.completions.create(**body)
                async for chunk in stream:
                    parts: list[dict] = []
                    if chunk.usage is not None:
                        usage = usage_from_chunk(chunk.usage)
                    for choice in chunk.choices:
                        delta = choice.delta
                        reasoning = reasoning_delta(delta.model_extra or {}) if delta is not None else ReasoningDelta()
                        if reasoning.malformed and not malformed_reasoning_logged:
                            # Once per round: a provider that sends it wrong sends it wrong on every chunk.
                            log.warning("malformed reasoning_details ignored: session=%s round=%s (%s)",
                                        request.session_id, request.round_index, reasoning.malformed)
                            malformed_reasoning_logged = True
                        if reasoning.text:
                            parts += assembler.on_reasoning(reasoning.text)
                            streamed["reasoning"] += 1
                        if delta is not None and delta.content:
                            parts += assembler.on_text(delta.content)
                            streamed["text"] += 1
                        for fragment in (delta.tool_calls or []) if delta is not None else []:
                            function = fragment.function
                            parts += assembler.on_tool_call(
                                fragment.index, fragment.id,
                                function.name if function else None, function.arguments if function else None,
                            )
                        finish_reason = choice.finish_reason or finish_reason
                    if parts:
                        batcher.add(parts)
            if finish_reason is None:
                raise ApplicationError("The model stream ended before the answer was complete.",
                                       type="ModelProviderError")
        except BaseException as failure:
            # A failed round, Stop or the worker shutting down: leave the stream well-formed.
            try:
                batcher.add(assembler.close_open())
                await batcher.flush()
            except (StreamClosed, StreamFull):
                pass  # whoever closed the stream, or the turn's end, closes what is open
            if isinstance(failure, StreamFull):
                log.warning("model round stopped, its stream is full: session=%s round=%s", request.session_id,
                            request.round_index)
                raise ApplicationError(f"This answer grew past {self.settings.stream_max_parts} stream parts and "
                                       "was cut off.", type="StreamFull", non_retryable=True) from failure
            if isinstance(failure, openai.OpenAIError):
                log.warning("model round failed: session=%s round=%s attempt=%s error=%s",
                            request.session_id, request.round_index, activity.info().attempt, type(failure).__name__)
                raise _provider_failure(failure) from failure
            raise

        batcher.add(assembler.finish())
        await batcher.flush()
        if usage.cost_microdollars is None:
            log.error("model round reported no cost: session=%s round=%s model=%s",
                      request.session_id, request.round_index, body["model"])
        return RoundResult(
            text="".join(assembler.text), reasoning="".join(assembler.reasoning),
            tool_calls=assembler.tool_calls(), usage=usage, model=body["model"], finish_reason=finish_reason,
        )
