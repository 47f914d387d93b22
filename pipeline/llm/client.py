"""The client every LLM stage calls: requests in, results out, through a bounded streaming worker pool.

See the package docstring (`pipeline.llm`) and docs/llm.md for the contract.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import openai
from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field, ValidationError

from personagraph import prompts
from personagraph.graph.model import gc_frozen
from personagraph.config import LLMConfig, Settings
from personagraph.llm.cache import CachedAnswer, ResponseCache, cache_key
from personagraph.llm.endpoints import (
    Endpoint,
    EndpointFleet,
    EndpointOut,
    EndpointUnavailable,
    WatchedAioHttpClient,
    unreachable,
    watched_ollama_transport,
)

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)

__all__ = ["EndpointUnavailable", "Estimate", "LLMClient", "LLMRequest", "LLMResult", "RateLimiter", "Usage",
           "approx_tokens", "unreachable"]


@dataclass(frozen=True, slots=True)
class LLMRequest:
    """One call: `key` is the caller's item id, `schema` the pydantic model the answer must fit (None = text).

    `params` overrides call parameters (temperature, max_tokens); `meta` rides along untouched to the result.
    """

    key: str
    messages: list[dict[str, str]]
    schema: type[BaseModel] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    meta: Any = None


@dataclass(slots=True)
class LLMResult:
    """The outcome of one request: `value` (a `schema` instance or text) when ok, else `error`; `raw_text` always kept."""

    request: LLMRequest
    ok: bool
    value: BaseModel | str | None
    raw_text: str = ""
    error: str = ""
    cached: bool = False
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    endpoint: str = ""

    @property
    def key(self) -> str:
        """The request's item id."""
        return self.request.key


class Usage(BaseModel):
    """Request and token accounting for a run (stored on the `Run` node via `as_dict`)."""

    requests: int = 0
    cached: int = 0
    succeeded: int = 0
    failed: int = 0
    calls: int = 0
    validation_retries: int = 0
    http_errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    endpoint_calls: dict[str, int] = Field(default_factory=dict, description="Calls answered, by endpoint URL")
    endpoints_taken_out: int = Field(default=0, description="Times an endpoint was taken out for a cool-down")
    last_error: str = Field(default="", exclude=True, description="The error of the latest failed request")

    def add(self, result: LLMResult) -> None:
        """Count one finished request."""
        self.requests += 1
        self.cached += result.cached
        if result.ok:
            self.succeeded += 1
        else:
            self.failed += 1
            self.last_error = result.error
        self.calls += result.attempts
        self.validation_retries += max(0, result.attempts - 1)
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens

    def since(self, before: Usage) -> Usage:
        """What was spent after the snapshot `before` (a stage's share of a shared client)."""
        spent = {k: v - getattr(before, k) for k, v in self.model_dump().items() if k != "endpoint_calls"}
        calls = {url: n - before.endpoint_calls.get(url, 0) for url, n in self.endpoint_calls.items()}
        return Usage(**spent, endpoint_calls={url: n for url, n in calls.items() if n})

    def merge(self, other: Usage) -> None:
        """Add another client's usage to this one (the workers of a run spread over processes)."""
        for name, value in other.model_dump().items():
            if name != "endpoint_calls":
                setattr(self, name, getattr(self, name) + value)
        for url, n in other.endpoint_calls.items():
            self.endpoint_calls[url] = self.endpoint_calls.get(url, 0) + n
        self.last_error = other.last_error or self.last_error

    def as_dict(self) -> dict[str, int | list[str]]:
        """Flat values for a node's properties, prefixed: numbers, and calls by endpoint as `url: n` lines."""
        out: dict[str, int | list[str]] = {f"llm_{k}": v for k, v in self.model_dump(exclude={"endpoint_calls"}).items()}
        if self.endpoint_calls:
            out["llm_endpoint_calls"] = [f"{url}: {n}" for url, n in sorted(self.endpoint_calls.items())]
        return out

    def endpoint_line(self) -> str:
        """Calls answered by each endpoint, in one line ('' with fewer than two endpoints)."""
        if len(self.endpoint_calls) < 2:
            return ""
        return ", ".join(f"{url} {n:,}" for url, n in sorted(self.endpoint_calls.items()))


class Estimate(BaseModel):
    """What a run would spend (`--dry-run`): calls not answered by the cache, and rough token counts."""

    requests: int = 0
    cached: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    max_completion_tokens: int = 0


def approx_tokens(text: str) -> int:
    """Rough token count: ~4 ASCII characters per token, ~1 token per other character (CJK)."""
    ascii_chars = sum(1 for c in text if c < "\x80")
    return ascii_chars // 4 + (len(text) - ascii_chars) + 1


class RateLimiter:
    """Spaces call starts exactly 1/rps apart; unlike a polling limiter its ceiling is the rate asked for."""

    def __init__(self, requests_per_second: float) -> None:
        self.interval = 1.0 / requests_per_second
        self._next = 0.0

    async def wait(self) -> None:
        """Return when the next call may start."""
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass(slots=True)
class _Schema:
    """A schema prepared once per stream: its JSON schema (for cache keys) and the instructions json mode adds."""

    model: type[BaseModel]
    json_schema: dict[str, Any]
    instructions: list[dict[str, str]]


class LLMClient:
    """Calls a chat model on many requests at once, with cache, retries, validation and accounting."""

    def __init__(self, config: LLMConfig, base_url: str | Sequence[str] | None, cache: ResponseCache | None = None) -> None:
        self.config = config
        self.base_urls: list[str] = [base_url] if isinstance(base_url, str) else list(base_url or [])
        self.cache = cache
        self.usage = Usage()

    @property
    def base_url(self) -> str | None:
        """The endpoint, or the endpoints comma-separated (for messages); None when built with `connect=False`."""
        return ", ".join(self.base_urls) or None

    @classmethod
    def from_settings(cls, settings: Settings, *, connect: bool = True) -> LLMClient:
        """Build from the settings; with no `llm.base_url`, start (or reuse) the embedded SmolLM2 server.

        `connect=False` starts nothing: enough for `estimate` (a `--dry-run`), not for `stream`.
        """
        cfg = settings.llm
        base_url = cfg.base_url
        if base_url is None:
            from personagraph.llm.local_server import LOCAL_CONCURRENCY, LOCAL_MODEL_NAME, LOCAL_TIMEOUT, ensure_local_server

            base_url = ensure_local_server(settings).base_url if connect else None
            cfg = cfg.model_copy(update={
                "model": LOCAL_MODEL_NAME, "provider": "openai", "concurrency": min(cfg.concurrency, LOCAL_CONCURRENCY),
                "timeout": max(cfg.timeout, LOCAL_TIMEOUT)})
        cache = ResponseCache(cfg.cache_dir or settings.store.data_dir / "llm_cache") if cfg.cache else None
        return cls(cfg, base_url, cache)

    def close(self) -> None:
        """Close the cache file (the embedded model server keeps running for the next command)."""
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @cached_property
    def _repair_prompt(self) -> prompts.Prompt:
        return prompts.load("llm/repair")

    def _params(self, request: LLMRequest) -> dict[str, Any]:
        """The call parameters that decide the answer (and so the cache key)."""
        return {
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            **request.params,
            "method": self.config.structured_output if request.schema else "text",
        }

    def _call_kwargs(self, request: LLMRequest) -> dict[str, Any]:
        """A request's parameter overrides in the provider's terms (Ollama takes them as `options`)."""
        if not request.params or self.config.provider != "ollama":
            return request.params
        names = {"max_tokens": "num_predict"}
        options = {"temperature": self.config.temperature, "num_predict": self.config.max_tokens}
        return {"options": options | {names.get(k, k): v for k, v in request.params.items()}}

    def key_of(self, request: LLMRequest, json_schema: dict[str, Any] | None = None) -> str:
        """Cache key of a request: (model, messages, params, schema)."""
        if request.schema is not None and json_schema is None:
            json_schema = request.schema.model_json_schema()
        return cache_key(self.config.model, request.messages, self._params(request), json_schema)

    def _open_model(self, endpoint: Endpoint) -> None:
        """Give `endpoint` a chat model on the openai client's aiohttp transport (bound to the running event loop), watched by it."""
        cfg = self.config
        if cfg.provider == "ollama":
            import httpx

            model = init_chat_model(
                cfg.model,
                model_provider="ollama",
                base_url=endpoint.base_url.removesuffix("/v1") or None,
                temperature=cfg.temperature,
                num_predict=cfg.max_tokens,
                client_kwargs={"timeout": httpx.Timeout(cfg.timeout, connect=cfg.connect_timeout)},
                async_client_kwargs={"transport": watched_ollama_transport(endpoint)},
            )
            endpoint.model = model
            return
        timeout = openai.Timeout(cfg.timeout, connect=cfg.connect_timeout)
        http_client = WatchedAioHttpClient(endpoint, timeout=timeout)
        model = init_chat_model(
            cfg.model,
            model_provider="openai",
            base_url=endpoint.base_url,
            api_key=cfg.api_key.get_secret_value() or "not-needed",
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            timeout=timeout,
            max_retries=cfg.max_retries,
            http_async_client=http_client,
        )
        endpoint.model, endpoint.http_client = model, http_client

    def _with_retries(self, runnable: Runnable) -> Runnable:
        """Ollama's client does not retry: LangChain's `with_retry` does it (backoff with jitter, as openai's)."""
        if self.config.provider != "ollama" or self.config.max_retries == 0:
            return runnable  # the openai client retries 429 / 5xx / timeouts / connection errors itself
        import httpx
        import ollama

        return runnable.with_retry(
            retry_if_exception_type=(ollama.ResponseError, httpx.HTTPError),
            wait_exponential_jitter=True,
            # tenacity deprecates `initial` (the TypedDict's key) in favour of `multiplier`
            exponential_jitter_params={"multiplier": 0.5, "max": 8.0, "jitter": 0.25},  # type: ignore[typeddict-unknown-key]
            stop_after_attempt=self.config.max_retries + 1,
        )

    def _prepare(self, schema: type[BaseModel]) -> _Schema:
        """What a stream needs of `schema` whatever the endpoint: its JSON schema, and json mode's instructions."""
        json_schema = schema.model_json_schema()
        # json mode constrains the syntax only, so the fields have to be spelled out in the prompt.
        method = self.config.structured_output
        instructions = prompts.load("llm/json_mode").render(schema=json.dumps(json_schema)) if method == "json_mode" else []
        return _Schema(schema, json_schema, instructions)

    def _runnable(self, endpoint: Endpoint, prepared: _Schema | None) -> Runnable:
        """The endpoint's model, bound to ask for `prepared`'s schema (plain text when None); made once per stream."""
        runnable = endpoint.prepared.get(prepared.model if prepared else None)
        if runnable is None:
            runnable = self._bind(endpoint.model, prepared) if prepared else self._with_retries(endpoint.model)
            endpoint.prepared[prepared.model if prepared else None] = runnable
        return runnable

    def _bind(self, model: BaseChatModel, prepared: _Schema) -> Runnable:
        """Bind the structured-output request for the schema in the configured method."""
        schema, json_schema = prepared.model, prepared.json_schema
        method = self.config.structured_output
        if self.config.provider == "ollama":
            if method == "function_calling":
                runnable = model.bind_tools([schema], tool_choice=schema.__name__)
            else:
                runnable = model.bind(format=json_schema if method == "json_schema" else "json")
        else:
            if method == "function_calling":
                tool = convert_to_openai_tool(schema)
                body = {"tools": [tool], "tool_choice": {"type": "function", "function": {"name": tool["function"]["name"]}}}
            elif method == "json_schema":
                body = {"response_format": {"type": "json_schema", "json_schema": {"name": schema.__name__, "schema": json_schema}}}
            else:
                body = {"response_format": {"type": "json_object"}}
            # Sent as extra_body, the spec skips the openai client's per-call walk of it against its
            # TypedDicts (CPU per call, docs/benchmarks.md). LangChain still reads the tool calls
            # from the answer.
            runnable = model.bind(extra_body=body)
        return self._with_retries(runnable)

    async def stream(self, requests: Iterable[LLMRequest] | AsyncIterable[LLMRequest]) -> AsyncIterator[LLMResult]:
        """Answer `requests` with at most `concurrency` calls in flight, yielding results as they complete.

        The cache is consulted first; a cached answer makes no call. Requests are pulled lazily, so an
        unbounded generator is fine. Every request yields exactly one result, ok or failed.
        """
        cfg = self.config
        if not self.base_urls and cfg.provider == "openai":
            raise RuntimeError("this client was built with connect=False (for estimates only); it cannot call a model")
        fleet = EndpointFleet(self.base_urls or [""], cfg, self.usage)
        for endpoint in fleet.endpoints:
            self._open_model(endpoint)
        limiter = RateLimiter(cfg.requests_per_second) if cfg.requests_per_second else None
        schemas: dict[type[BaseModel], _Schema] = {}
        workers = cfg.concurrency
        inbox: asyncio.Queue[tuple[LLMRequest, str, _Schema | None] | None] = asyncio.Queue(maxsize=workers)
        outbox: asyncio.Queue[LLMResult | None] = asyncio.Queue(maxsize=2 * workers)

        # On cancellation (the caller stopped reading) the sentinels are skipped: everyone is being
        # cancelled, and a put into a full queue would never return.
        async def produce() -> None:
            cancelled = False
            try:
                async for request in _aiter(requests):
                    prepared = None
                    if request.schema is not None:
                        prepared = schemas.get(request.schema) or schemas.setdefault(
                            request.schema, self._prepare(request.schema)
                        )
                    key, hit = "", None
                    if self.cache is not None:
                        key = self.key_of(request, prepared.json_schema if prepared else None)
                        hit = self.cache.get(key)
                    if hit is not None:
                        await outbox.put(self._from_cache(request, hit))
                    else:
                        await inbox.put((request, key, prepared))
            except asyncio.CancelledError:
                cancelled = True
                raise
            finally:
                if not cancelled:
                    for _ in range(workers):
                        await inbox.put(None)

        async def work() -> None:
            cancelled = False
            try:
                while (item := await inbox.get()) is not None:
                    request, key, prepared = item
                    try:
                        result = await self._answer(fleet, request, key, prepared, limiter)
                    except EndpointUnavailable:
                        return  # the pool is being cancelled and the reader raises it
                    except Exception as exc:  # a bug in one item must not stop the run
                        result = LLMResult(request, False, None, error=f"{type(exc).__name__}: {exc}")
                    await outbox.put(result)
            except asyncio.CancelledError:
                cancelled = True
                raise
            finally:
                if not cancelled:
                    await outbox.put(None)

        tasks = [asyncio.create_task(produce())] + [asyncio.create_task(work()) for _ in range(workers)]

        def stop_calling() -> None:
            """The endpoint is down: cancel the pool, then wake the reader (it raises after the answers already waiting)."""
            for task in tasks:
                task.cancel()
            tasks.append(asyncio.create_task(outbox.put(None)))

        fleet.on_down = stop_calling
        try:
            with gc_frozen():  # thousands of answers: no full-heap collections while they stream
                finished = 0
                while finished < workers:
                    result = await outbox.get()
                    if result is None:
                        if fleet.down is not None:
                            raise fleet.down  # after the answers that were already waiting
                        finished += 1
                        continue
                    self.usage.add(result)
                    yield result
            await tasks[0]  # re-raise an error of the request iterator
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*fleet.close_transports(), return_exceptions=True)

    def describe_error(self, exc: BaseException, base_url: str | None = None) -> str:
        """A failed call in one line, naming the real cause ("connection refused at URL: ...", not "Request timed out")."""
        found = unreachable(exc, self.config)
        if found is not None:
            return f"{found[0]} at {base_url or self.base_url}: {found[1]}"
        return f"{type(exc).__name__}: {exc}"

    def _from_cache(self, request: LLMRequest, hit: CachedAnswer) -> LLMResult:
        value, error = _parse(hit.raw_text, request.schema)
        return LLMResult(request, not error, value, raw_text=hit.raw_text, error=error, cached=True)

    async def _answer(
        self, fleet: EndpointFleet, request: LLMRequest, key: str, prepared: _Schema | None, limiter: RateLimiter | None
    ) -> LLMResult:
        """Call until the answer validates (at most 1 + validation_retries calls); transport retries happen below."""
        tries = 1 + (self.config.validation_retries if request.schema else 0)
        result = LLMResult(request, False, None)
        first: list[dict[str, str]] = [*request.messages, *prepared.instructions] if prepared else request.messages
        messages = first
        for _ in range(tries):
            if limiter is not None:
                await limiter.wait()
            try:
                message = await self._call(fleet, request, prepared, messages, result)
            except EndpointUnavailable:
                raise
            except Exception as exc:
                # The transport retries (the openai client's, or with_retry's for Ollama) are spent.
                result.error = self.describe_error(exc, result.endpoint)
                return result
            result.attempts += 1
            tokens = message.usage_metadata or {}
            result.prompt_tokens += tokens.get("input_tokens", 0)
            result.completion_tokens += tokens.get("output_tokens", 0)
            result.raw_text, result.error = _raw_text(message)
            if not result.error:
                result.value, result.error = _parse(result.raw_text, request.schema)
            if not result.error:
                result.ok = True
                if self.cache is not None:
                    self.cache.put(key, CachedAnswer(
                        raw_text=result.raw_text,
                        prompt_tokens=result.prompt_tokens,
                        completion_tokens=result.completion_tokens,
                    ))
                return result
            messages = [
                *first,
                {"role": "assistant", "content": result.raw_text},
                *self._repair_prompt.render(error=result.error[:500]),
            ]
        return result

    async def _call(self, fleet: EndpointFleet, request: LLMRequest, prepared: _Schema | None,
                    messages: list[dict[str, str]], result: LLMResult) -> AIMessage:
        """One call on the endpoint the fleet picks; moved to another one when that endpoint is taken out meanwhile.

        `result.endpoint` names the endpoint called last. A call that failed while its endpoint stayed
        in raises here: the server answered, just not well.
        """
        while True:
            endpoint = fleet.pick()  # raises EndpointUnavailable when every endpoint is out
            result.endpoint = endpoint.base_url
            endpoint.outstanding += 1
            try:
                if prepared is None and self.config.provider == "openai":
                    return await self._complete_text(endpoint, messages, request)
                return await self._runnable(endpoint, prepared).ainvoke(messages, **self._call_kwargs(request))
            except EndpointOut:
                continue
            except EndpointUnavailable:
                raise
            except Exception:
                if endpoint.out and len(fleet.endpoints) > 1:
                    continue  # it failed because its server is failing: another one takes the call
                raise
            finally:
                endpoint.outstanding -= 1

    async def _complete_text(self, endpoint: Endpoint, messages: list[dict[str, str]], request: LLMRequest) -> AIMessage:
        """A plain-text answer from an OpenAI-compatible endpoint, asked through the openai client the
        endpoint's LangChain model holds (same transport, watch, timeout and retries) with the payload
        LangChain would send, minus LangChain's per-call message conversion and callbacks: the hot
        path of synthesis, ~1 ms of client CPU a call less (docs/benchmarks.md)."""
        cfg = self.config
        params = {"temperature": cfg.temperature, "max_tokens": cfg.max_tokens, **request.params}
        params["max_completion_tokens"] = params.pop("max_tokens")  # as langchain-openai sends it
        if re.match(r"^o\d", cfg.model):  # o-series models take the system prompt as "developer", as LangChain does
            messages = [{**m, "role": "developer"} if m["role"] == "system" else m for m in messages]
        # The messages go as extra_body (which overrides the empty list in the JSON sent): given as
        # `messages`, the openai client walks them against its TypedDicts on every call, ~0.5 ms of
        # CPU a call (bench/bench_ray.py's profile); the payload is the same.
        completion = await endpoint.model.root_async_client.chat.completions.create(
            model=cfg.model, messages=[], extra_body={"messages": messages}, **params)
        usage = completion.usage
        tokens = UsageMetadata(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                               total_tokens=usage.total_tokens) if usage else None
        content = completion.choices[0].message.content if completion.choices else None
        return AIMessage(content=content or "", usage_metadata=tokens)

    def run_sync(self, requests: Iterable[LLMRequest]) -> list[LLMResult]:
        """Answer `requests` from synchronous code (a CLI command); results in completion order."""

        async def collect() -> list[LLMResult]:
            return [result async for result in self.stream(requests)]

        return asyncio.run(collect())

    def estimate(self, requests: Iterable[LLMRequest]) -> Estimate:
        """Count the calls and rough tokens that answering `requests` would spend, without calling."""
        out = Estimate()
        schema_text: dict[type[BaseModel], tuple[dict[str, Any], int]] = {}
        for request in requests:
            out.requests += 1
            json_schema, extra = None, 0
            if request.schema is not None:
                if request.schema not in schema_text:
                    js = request.schema.model_json_schema()
                    schema_text[request.schema] = (js, approx_tokens(json.dumps(js)))
                json_schema, extra = schema_text[request.schema]
            if self.cache is not None and self.cache.get(self.key_of(request, json_schema)) is not None:
                out.cached += 1
                continue
            out.calls += 1
            out.prompt_tokens += extra + sum(approx_tokens(m["content"]) + 4 for m in request.messages)
            out.max_completion_tokens += int(request.params.get("max_tokens", self.config.max_tokens))
        return out


async def _aiter(items: Iterable[LLMRequest] | AsyncIterable[LLMRequest]) -> AsyncIterator[LLMRequest]:
    """Iterate sync or async iterables alike."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def _raw_text(message: AIMessage) -> tuple[str, str]:
    """The answer's text: tool-call arguments if the model called the tool, else the content; plus an error."""
    if message.tool_calls:
        return json.dumps(message.tool_calls[0]["args"], ensure_ascii=False), ""
    if message.invalid_tool_calls:
        return str(message.invalid_tool_calls[0].get("args") or ""), "tool call arguments are not valid JSON"
    text = message.text
    return text, "" if text.strip() else "empty answer"


def _parse(raw: str, schema: type[BaseModel] | None) -> tuple[BaseModel | str | None, str]:
    """Validate `raw` against `schema` (text passes as is); returns (value, error)."""
    if schema is None:
        return raw, ""
    fenced = _FENCE.match(raw)
    try:
        return schema.model_validate_json(fenced.group(1) if fenced else raw), ""
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:5])
        return None, f"answer does not fit {schema.__name__}: {problems}"
