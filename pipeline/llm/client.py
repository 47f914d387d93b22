"""The client every LLM stage calls: requests in, results out, through a bounded streaming worker pool.

See the package docstring (`pipeline.llm`) and docs/llm.md for the contract.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import aiohttp
import openai
from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field, ValidationError

from personagraph import prompts
from personagraph.graph.model import gc_frozen
from personagraph.config import LLMConfig, Settings
from personagraph.errors import UserActionNeeded
from personagraph.llm.cache import CachedAnswer, ResponseCache, cache_key

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
_T = TypeVar("_T")


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
        return Usage(**{k: v - getattr(before, k) for k, v in self.model_dump().items()})

    def as_dict(self) -> dict[str, int]:
        """Flat numbers, prefixed for a node's properties."""
        return {f"llm_{k}": v for k, v in self.model_dump().items()}


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


class EndpointUnavailable(UserActionNeeded):
    """The endpoint refused, could not be found, or did not answer `max_consecutive_failures` calls in a row.

    Raised by `LLMClient.stream` instead of failing every remaining request: the run stops within
    seconds, keeping what was answered before (answers are cached, so a rerun does not pay for them).
    """

    def __init__(self, base_url: str, problem: str, attempts: int, detail: str) -> None:
        self.base_url, self.problem, self.attempts, self.detail = base_url, problem, attempts, detail
        hang = problem.startswith("no answer")
        advice = ("the server hangs or is overloaded: check it, or raise llm.timeout / lower llm.concurrency if the "
                  "model needs longer" if hang else
                  "start the server or point OPENAI_BASE_URL / llm.base_url at a running one (`personagraph doctor` checks it)")
        super().__init__(f"LLM endpoint unavailable: {problem} at {base_url} ({attempts} attempts in a row: {detail}); "
                         f"{advice}; answers received so far are kept, rerun to continue")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (worker processes hand errors back)
        return type(self), (self.base_url, self.problem, self.attempts, self.detail)


def unreachable(exc: BaseException, config: LLMConfig) -> tuple[str, str] | None:
    """(problem, detail) when a failed call never reached the endpoint or got no answer in time; None otherwise.

    Reads the whole cause chain: the openai client reports a refused connection on its aiohttp
    transport as "Request timed out" (the transport maps aiohttp's connector errors to a connect
    timeout), so only the underlying socket or aiohttp error tells what happened.
    """
    chain: list[BaseException] = []
    while exc is not None and len(chain) < 16:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]  (httpcore hides the socket error as context)
    httpx = sys.modules.get("httpx")  # legacy httpx carries the Ollama client's calls, if it is loaded at all
    for kinds, problem in (
        ((socket.gaierror, *_classes(aiohttp, "ClientConnectorDNSError")), "unknown host"),
        ((ConnectionRefusedError,), "connection refused"),
        ((*_classes(aiohttp, "ConnectionTimeoutError"), *_classes(httpx, "ConnectTimeout")),
         f"no connection within {config.connect_timeout:g} s"),
        ((TimeoutError, *_classes(httpx, "TimeoutException")), f"no answer within {config.timeout:g} s"),
        ((OSError, aiohttp.ClientConnectionError, *_classes(httpx, "NetworkError", "RemoteProtocolError")),
         "connection failed"),
    ):
        for e in chain:
            if isinstance(e, kinds):
                return problem, str(e) or type(e).__name__
    return None


def _classes(module: Any, *names: str) -> tuple[type[BaseException], ...]:
    """The exception classes among `names` that `module` has (none when the module is None; older versions lack some)."""
    return tuple(kind for name in names if (kind := getattr(module, name, None)) is not None)


class _EndpointWatch:
    """Sees every HTTP attempt of one stream: counts error answers, and stops the stream when the endpoint is down.

    Down means `max_consecutive_failures` attempts in a row that could not connect or got no answer
    within `timeout`, with no answer of any kind (429 and 5xx included) in between. Attempts are
    counted below the client's retries, so a dead endpoint stops the run after a handful of failed
    attempts instead of a full round of retries per request.
    """

    def __init__(self, base_url: str, config: LLMConfig, usage: Usage) -> None:
        self.base_url, self.config, self.usage = base_url, config, usage
        self.failures = 0
        self.down: EndpointUnavailable | None = None
        self.on_down: Callable[[], None] = lambda: None

    async def attempt(self, sending: Awaitable[_T]) -> _T:
        """Await one HTTP attempt (`sending` gives a response with `status_code`) and record its outcome."""
        try:
            response = await sending
        except Exception as exc:
            self.failed(exc)
            raise
        self.failures = 0
        if response.status_code >= 400:  # type: ignore[attr-defined]
            self.usage.http_errors += 1  # the client retries 429 / 5xx out of our sight
        return response

    def failed(self, exc: Exception) -> None:
        """Count a failed attempt; raise `EndpointUnavailable` (once) when that makes the endpoint down."""
        found = unreachable(exc, self.config)
        if found is None or self.down is not None:
            return
        self.failures += 1
        if self.failures >= self.config.max_consecutive_failures:
            problem, detail = found
            self.down = EndpointUnavailable(self.base_url, problem, self.failures, detail)
            self.on_down()
            raise self.down from exc


class _WatchedAioHttpClient(openai.DefaultAioHttpClient):  # type: ignore[misc, valid-type]
    """The openai client's aiohttp transport, every attempt reported to an `_EndpointWatch`."""

    def __init__(self, watch: _EndpointWatch, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._watch = watch

    async def send(self, request: Any, **kwargs: Any) -> Any:
        return await self._watch.attempt(super().send(request, **kwargs))


def _watched_ollama_transport(watch: _EndpointWatch) -> Any:
    """An httpx transport for the Ollama client that reports every attempt to `watch`."""
    import httpx

    class WatchedTransport(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await watch.attempt(super().handle_async_request(request))

    return WatchedTransport()


@dataclass(slots=True)
class _Schema:
    """A schema prepared once per stream: its JSON schema (for cache keys) and the bound model that asks for it."""

    model: type[BaseModel]
    json_schema: dict[str, Any]
    runnable: Runnable
    instructions: list[dict[str, str]]


class LLMClient:
    """Calls a chat model on many requests at once, with cache, retries, validation and accounting."""

    def __init__(self, config: LLMConfig, base_url: str | None, cache: ResponseCache | None = None) -> None:
        self.config = config
        self.base_url = base_url
        self.cache = cache
        self.usage = Usage()

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

    def _open_model(self, watch: _EndpointWatch) -> tuple[BaseChatModel, Any]:
        """A chat model on the openai client's aiohttp transport (bound to the running event loop), watched by `watch`."""
        cfg = self.config
        if cfg.provider == "ollama":
            import httpx

            model = init_chat_model(
                cfg.model,
                model_provider="ollama",
                base_url=(self.base_url or "").removesuffix("/v1") or None,
                temperature=cfg.temperature,
                num_predict=cfg.max_tokens,
                client_kwargs={"timeout": httpx.Timeout(cfg.timeout, connect=cfg.connect_timeout)},
                async_client_kwargs={"transport": _watched_ollama_transport(watch)},
            )
            return model, None
        timeout = openai.Timeout(cfg.timeout, connect=cfg.connect_timeout)
        http_client = _WatchedAioHttpClient(watch, timeout=timeout)
        model = init_chat_model(
            cfg.model,
            model_provider="openai",
            base_url=self.base_url,
            api_key=cfg.api_key.get_secret_value() or "not-needed",
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            timeout=timeout,
            max_retries=cfg.max_retries,
            http_async_client=http_client,
        )
        return model, http_client

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

    def _prepare(self, model: BaseChatModel, schema: type[BaseModel]) -> _Schema:
        """Bind the structured-output request for `schema` in the configured method."""
        json_schema = schema.model_json_schema()
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
        # json mode constrains the syntax only, so the fields have to be spelled out in the prompt.
        instructions = prompts.load("llm/json_mode").render(schema=json.dumps(json_schema)) if method == "json_mode" else []
        return _Schema(schema, json_schema, self._with_retries(runnable), instructions)

    async def stream(self, requests: Iterable[LLMRequest] | AsyncIterable[LLMRequest]) -> AsyncIterator[LLMResult]:
        """Answer `requests` with at most `concurrency` calls in flight, yielding results as they complete.

        The cache is consulted first; a cached answer makes no call. Requests are pulled lazily, so an
        unbounded generator is fine. Every request yields exactly one result, ok or failed.
        """
        cfg = self.config
        if self.base_url is None and cfg.provider == "openai":
            raise RuntimeError("this client was built with connect=False (for estimates only); it cannot call a model")
        watch = _EndpointWatch(self.base_url or "", cfg, self.usage)
        model, http_client = self._open_model(watch)
        text_model = self._with_retries(model)
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
                            request.schema, self._prepare(model, request.schema)
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
                        result = await self._answer(text_model, request, key, prepared, limiter)
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

        watch.on_down = stop_calling
        try:
            with gc_frozen():  # thousands of answers: no full-heap collections while they stream
                finished = 0
                while finished < workers:
                    result = await outbox.get()
                    if result is None:
                        if watch.down is not None:
                            raise watch.down  # after the answers that were already waiting
                        finished += 1
                        continue
                    self.usage.add(result)
                    yield result
            await tasks[0]  # re-raise an error of the request iterator
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if http_client is not None:
                await http_client.aclose()

    def describe_error(self, exc: BaseException) -> str:
        """A failed call in one line, naming the real cause ("connection refused at URL: ...", not "Request timed out")."""
        found = unreachable(exc, self.config)
        if found is not None:
            return f"{found[0]} at {self.base_url}: {found[1]}"
        return f"{type(exc).__name__}: {exc}"

    def _from_cache(self, request: LLMRequest, hit: CachedAnswer) -> LLMResult:
        value, error = _parse(hit.raw_text, request.schema)
        return LLMResult(request, not error, value, raw_text=hit.raw_text, error=error, cached=True)

    async def _answer(
        self, text_model: Runnable, request: LLMRequest, key: str, prepared: _Schema | None, limiter: RateLimiter | None
    ) -> LLMResult:
        """Call until the answer validates (at most 1 + validation_retries calls); transport retries happen below."""
        runnable: Runnable = prepared.runnable if prepared else text_model
        tries = 1 + (self.config.validation_retries if request.schema else 0)
        result = LLMResult(request, False, None)
        first: list[dict[str, str]] = [*request.messages, *prepared.instructions] if prepared else request.messages
        messages = first
        for _ in range(tries):
            if limiter is not None:
                await limiter.wait()
            try:
                message = await runnable.ainvoke(messages, **self._call_kwargs(request))
            except EndpointUnavailable:
                raise
            except Exception as exc:
                # The transport retries (the openai client's, or with_retry's for Ollama) are spent.
                result.error = self.describe_error(exc)
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
