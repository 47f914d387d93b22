"""The endpoints one client calls: a fleet of OpenAI-compatible servers, balanced, with failing ones sat out.

Every HTTP attempt passes through its endpoint's `Endpoint.attempt` (below the openai client's
retries), so the fleet sees failures as they happen rather than after a request's full round of
retries:

- Calls go to the endpoint with the fewest calls outstanding (ties in turn), so a slow server gets
  less work and a fast one more.
- An endpoint is *taken out* after `max_consecutive_failures` attempts in a row that could not
  connect or got no answer within `timeout` (with several endpoints, HTTP 5xx answers count too:
  the others can do the work). It sits out `endpoint_cooldown` seconds, doubling each time it fails
  again after coming back (up to `endpoint_cooldown_max`), and one answer resets that. Calls that
  were waiting on it go to the others at once.
- When every endpoint is out at the same time the stream stops with `EndpointUnavailable`, naming
  each endpoint and what failed there; answers received so far are kept (and cached).

With one endpoint this is the single-server behaviour: a 5xx is an answer (the server is up; the
request fails after its retries), and a dead server stops the run within a handful of attempts.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import openai

from personagraph.config import LLMConfig
from personagraph.errors import UserActionNeeded

if TYPE_CHECKING:
    from personagraph.llm.client import Usage

_T = TypeVar("_T")


class EndpointUnavailable(UserActionNeeded):
    """The endpoint refused, could not be found, or did not answer `max_consecutive_failures` calls in a row.

    Raised by `LLMClient.stream` instead of failing every remaining request: the run stops within
    seconds, keeping what was answered before (answers are cached, so a rerun does not pay for them).
    With several endpoints it is raised only when all are out at once, and `failures` holds each one's.
    """

    def __init__(self, base_url: str, problem: str, attempts: int, detail: str,
                 failures: Sequence[EndpointUnavailable] = ()) -> None:
        self.base_url, self.problem, self.attempts, self.detail = base_url, problem, attempts, detail
        self.failures = list(failures)
        problems = [f.problem for f in self.failures] or [problem]
        hang = all(p.startswith("no answer") for p in problems)
        advice = ("the server hangs or is overloaded: check it, or raise llm.timeout / lower llm.concurrency if the "
                  "model needs longer" if hang else
                  "start the server or point OPENAI_BASE_URL / llm.base_url at a running one (`personagraph doctor` checks it)")
        if self.failures:
            each = "; ".join(f"{f.problem} at {f.base_url} ({f.attempts} attempts in a row: {f.detail})" for f in self.failures)
            what = f"all {len(self.failures)} LLM endpoints unavailable: {each}"
        else:
            what = f"LLM endpoint unavailable: {problem} at {base_url} ({attempts} attempts in a row: {detail})"
        super().__init__(f"{what}; {advice}; answers received so far are kept, rerun to continue")

    @classmethod
    def of_all(cls, failures: Sequence[EndpointUnavailable]) -> EndpointUnavailable:
        """One error for a whole fleet that is out (the failure itself when there is one endpoint)."""
        if len(failures) == 1:
            return failures[0]
        first = failures[0]
        return cls(", ".join(f.base_url for f in failures), first.problem, sum(f.attempts for f in failures),
                   first.detail, failures)

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (worker processes hand errors back)
        return type(self), (self.base_url, self.problem, self.attempts, self.detail, self.failures)


class EndpointOut(openai.OpenAIError):
    """This endpoint was taken out while a call waited on it: the call goes to another one.

    An `OpenAIError`, so the openai client passes it straight up instead of retrying the same server.
    """

    def __init__(self, base_url: str) -> None:
        super().__init__(f"endpoint {base_url} is sitting out a cool-down")
        self.base_url = base_url


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


class Endpoint:
    """One server of the fleet: its URL, calls outstanding and served, and its failures and cool-down."""

    def __init__(self, base_url: str, fleet: EndpointFleet) -> None:
        self.base_url, self.fleet = base_url, fleet
        self.outstanding = 0
        self.failures = 0
        self.cooldown = fleet.config.endpoint_cooldown
        self.out_until = 0.0
        self.last_failure: EndpointUnavailable | None = None
        self.model: Any = None        # the chat model bound to this endpoint (set by the client)
        self.http_client: Any = None  # its transport, closed at the end of the stream
        self.prepared: dict[Any, Any] = {}  # structured-output runnables by schema, made on first use

    @property
    def out(self) -> bool:
        """Whether the endpoint sits out a cool-down now."""
        return time.monotonic() < self.out_until

    def check_in(self) -> None:
        """Before an HTTP attempt: refuse it (`EndpointOut`) while the endpoint sits out, so the call moves on."""
        if self.out and len(self.fleet.endpoints) > 1:
            raise EndpointOut(self.base_url)

    async def attempt(self, sending: Awaitable[_T]) -> _T:
        """Await one HTTP attempt (`sending` gives a response with `status_code`) and record its outcome."""
        try:
            response = await sending
        except Exception as exc:
            self.failed(exc)
            raise
        status = response.status_code  # type: ignore[attr-defined]
        if status >= 400:
            self.fleet.usage.http_errors += 1  # the client retries 429 / 5xx out of our sight
        if status >= 500 and len(self.fleet.endpoints) > 1:
            try:
                self.count_failure("server error", f"HTTP {status}")
            except BaseException:
                await response.aclose()  # the call moves to another endpoint: give this connection back
                raise
            return response
        self.failures = 0
        if status < 400:
            self.cooldown = self.fleet.config.endpoint_cooldown  # it answers again: forget earlier cool-downs
            calls = self.fleet.usage.endpoint_calls
            calls[self.base_url] = calls.get(self.base_url, 0) + 1
        return response

    def failed(self, exc: Exception) -> None:
        """Count an attempt that raised; only failures to reach the server or to get an answer count against it."""
        if isinstance(exc, EndpointOut):
            return
        found = unreachable(exc, self.fleet.config)
        if found is not None:
            self.count_failure(*found, cause=exc)

    def count_failure(self, problem: str, detail: str, cause: BaseException | None = None) -> None:
        """One more failure in a row; at `max_consecutive_failures` the endpoint is taken out."""
        if self.fleet.down is not None or self.out:
            return
        self.failures += 1
        if self.failures >= self.fleet.config.max_consecutive_failures:
            self.last_failure = EndpointUnavailable(self.base_url, problem, self.failures, detail)
            self.fleet.take_out(self, cause)


class EndpointFleet:
    """The endpoints of one stream: which one takes the next call, and which sit out."""

    def __init__(self, base_urls: Sequence[str], config: LLMConfig, usage: Usage) -> None:
        if not base_urls:
            raise ValueError("an endpoint fleet needs at least one base URL")
        self.config, self.usage = config, usage
        self.endpoints = [Endpoint(url, self) for url in base_urls]
        self.down: EndpointUnavailable | None = None
        self.on_down: Callable[[], None] = lambda: None
        self._turn = 0

    def pick(self) -> Endpoint:
        """The endpoint for the next call: fewest outstanding among those not sitting out, ties in turn."""
        if self.down is not None:
            raise self.down
        n = len(self.endpoints)
        self._turn = (self._turn + 1) % n
        best: Endpoint | None = None
        for i in range(n):
            endpoint = self.endpoints[(self._turn + i) % n]
            if not endpoint.out and (best is None or endpoint.outstanding < best.outstanding):
                best = endpoint
        if best is None:  # cannot happen while `down` is unset (taking out the last one sets it); kept as a guard
            raise EndpointUnavailable.of_all([e.last_failure for e in self.endpoints if e.last_failure])
        return best

    def take_out(self, endpoint: Endpoint, cause: BaseException | None) -> None:
        """Start the endpoint's cool-down; when none is left, stop the stream (`on_down`) and raise the error."""
        endpoint.out_until = time.monotonic() + endpoint.cooldown
        endpoint.cooldown = min(endpoint.cooldown * 2, self.config.endpoint_cooldown_max)
        endpoint.failures = 0
        self.usage.endpoints_taken_out += 1
        if all(e.out for e in self.endpoints):
            self.down = EndpointUnavailable.of_all([e.last_failure for e in self.endpoints if e.last_failure])
            self.on_down()
            raise self.down from cause
        raise EndpointOut(endpoint.base_url) from cause

    def close_transports(self) -> list[Awaitable[None]]:
        """The closing of every endpoint's HTTP transport, to await at the end of the stream."""
        return [e.http_client.aclose() for e in self.endpoints if e.http_client is not None]


class WatchedAioHttpClient(openai.DefaultAioHttpClient):  # type: ignore[misc, valid-type]
    """The openai client's aiohttp transport, every attempt reported to its `Endpoint`."""

    def __init__(self, endpoint: Endpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._endpoint = endpoint

    async def send(self, request: Any, **kwargs: Any) -> Any:
        self._endpoint.check_in()
        return await self._endpoint.attempt(super().send(request, **kwargs))


def watched_ollama_transport(endpoint: Endpoint) -> Any:
    """An httpx transport for the Ollama client that reports every attempt to `endpoint`."""
    import httpx

    class WatchedTransport(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            endpoint.check_in()
            return await endpoint.attempt(super().handle_async_request(request))

    return WatchedTransport()
