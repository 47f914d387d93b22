"""The LLM layer through the real LangChain/openai/aiohttp stack against the project's fake endpoint."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from personagraph.config import LLMConfig, Settings
from personagraph.llm import EndpointUnavailable, LLMClient, LLMRequest, LLMResult, check_endpoint
from tests.fake_llm_server import FakeLLM, Faults


class Persona(BaseModel):
    """A small structured answer, as the extract stage asks for."""

    description: str = Field(min_length=5)
    age_group: str
    years: int


def settings_for(fake: FakeLLM, tmp_path: Path, **llm: object) -> Settings:
    """Settings pointing at the fake endpoint, with a cache in `tmp_path`."""
    base = {"base_url": fake.base_url, "model": "fake-model", "timeout": 5.0, "max_retries": 3, "concurrency": 8}
    return Settings(llm={**base, **llm}, store={"data_dir": tmp_path})


def requests(n: int, schema: type[BaseModel] | None = Persona, prefix: str = "text") -> list[LLMRequest]:
    """`n` distinct requests."""
    return [LLMRequest(key=f"k{i}", messages=[{"role": "user", "content": f"{prefix} number {i}"}], schema=schema)
            for i in range(n)]


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_structured_answers_validate_into_the_schema(fake_llm: FakeLLM, tmp_path: Path, method: str) -> None:
    with LLMClient.from_settings(settings_for(fake_llm, tmp_path, structured_output=method)) as client:
        results = client.run_sync(requests(20))
    assert sorted(r.key for r in results) == sorted(f"k{i}" for i in range(20))
    assert all(r.ok and isinstance(r.value, Persona) for r in results)
    assert len({r.value.description for r in results}) == 20  # type: ignore[union-attr]
    assert client.usage.succeeded == 20 and client.usage.calls == 20
    assert client.usage.prompt_tokens > 0 and client.usage.completion_tokens > 0


def test_text_answers_when_no_schema(fake_llm: FakeLLM, tmp_path: Path) -> None:
    with LLMClient.from_settings(settings_for(fake_llm, tmp_path)) as client:
        (result,) = client.run_sync(requests(1, schema=None))
    assert result.ok and isinstance(result.value, str) and "number 0" in result.value


def test_rerun_is_answered_from_the_cache_without_calls(fake_llm: FakeLLM, tmp_path: Path) -> None:
    settings = settings_for(fake_llm, tmp_path)
    with LLMClient.from_settings(settings) as client:
        first = {r.key: r.value for r in client.run_sync(requests(30))}
    calls = fake_llm.stats.requests
    with LLMClient.from_settings(settings) as client:
        assert client.estimate(requests(30)).calls == 0
        again = client.run_sync(requests(30))
        assert fake_llm.stats.requests == calls
        assert all(r.cached for r in again) and {r.key: r.value for r in again} == first
        assert client.usage.cached == 30 and client.usage.prompt_tokens == 0
        # a different prompt is a different key
        client.run_sync(requests(1, prefix="other"))
    assert fake_llm.stats.requests == calls + 1


def test_server_errors_and_rate_limits_are_retried_by_the_client(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.faults = Faults(error_500=0.1, error_429=0.15, retry_after=0.01, seed=1)
    with LLMClient.from_settings(settings_for(fake_llm, tmp_path, max_retries=6)) as client:
        results = client.run_sync(requests(40))
    assert all(r.ok for r in results)
    errors = fake_llm.stats.outcomes["500"] + fake_llm.stats.outcomes["429"]
    assert errors > 0 and client.usage.http_errors == errors


def test_timeouts_are_retried_then_recorded_as_failures(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.faults = Faults(timeout=1.0, hang=5.0)
    # 8 timeouts in a row would stop the stream (see below); here the endpoint is allowed more
    settings = settings_for(fake_llm, tmp_path, timeout=0.2, max_retries=1, max_consecutive_failures=20)
    with LLMClient.from_settings(settings) as client:
        started = time.monotonic()
        results = client.run_sync(requests(4))
    assert time.monotonic() - started < 4.0
    assert [r.ok for r in results] == [False] * 4
    assert all(r.error.startswith(f"no answer within 0.2 s at {fake_llm.base_url}") for r in results)
    assert fake_llm.stats.requests == 8  # one call and one transport retry each
    assert client.usage.failed == 4


def closed_port_url() -> str:
    """An endpoint on a loopback port nobody listens on: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@dataclass
class Stopped:
    """What a stream gave before it stopped: results, requests pulled from the input, seconds, and its error."""

    results: list[LLMResult]
    pulled: int
    seconds: float
    error: EndpointUnavailable | None


def stream_until_it_stops(settings: Settings, items: list[LLMRequest], within: float = 15.0) -> Stopped:
    """Stream `items` lazily until the stream ends or raises `EndpointUnavailable` (kept in `error`).

    Before the endpoint check, a dead endpoint cost minutes of retries here: `within` fails the test instead.
    """
    stopped = Stopped([], 0, 0.0, None)

    def lazily() -> Iterator[LLMRequest]:
        for request in items:
            stopped.pulled += 1
            yield request

    async def consume() -> None:
        with LLMClient.from_settings(settings) as client:
            async for result in client.stream(lazily()):
                stopped.results.append(result)

    started = time.monotonic()
    try:
        asyncio.run(asyncio.wait_for(consume(), timeout=within))
    except EndpointUnavailable as exc:
        stopped.error = exc
    stopped.seconds = time.monotonic() - started
    return stopped


def test_a_refused_connection_stops_the_stream_within_seconds_naming_the_address(tmp_path: Path) -> None:
    url = closed_port_url()
    settings = Settings(llm={"base_url": url, "model": "m", "max_retries": 5, "concurrency": 8}, store={"data_dir": tmp_path})
    run = stream_until_it_stops(settings, requests(500))
    message = str(run.error)
    assert message.startswith(f"LLM endpoint unavailable: connection refused at {url} (5 attempts in a row: [Errno 111]")
    assert "timed out" not in message and "\n" not in message
    assert run.seconds < 5.0 and run.results == []  # nothing answered, and no item burnt as failed
    assert run.pulled <= 2 * 8 + 1  # no new request once it was down: the pool and its inbox at most


def test_an_unknown_host_stops_the_stream_naming_it(tmp_path: Path) -> None:
    settings = Settings(llm={"base_url": "http://no-such-host.invalid/v1", "model": "m"}, store={"data_dir": tmp_path})
    run = stream_until_it_stops(settings, requests(200))
    assert str(run.error).startswith("LLM endpoint unavailable: unknown host at http://no-such-host.invalid/v1 ")
    assert run.seconds < 10.0


def test_a_refused_connection_is_reported_as_refused_not_as_a_timeout(tmp_path: Path) -> None:
    url = closed_port_url()
    settings = Settings(llm={"base_url": url, "model": "m", "max_retries": 0}, store={"data_dir": tmp_path})
    with LLMClient.from_settings(settings) as client:
        results = client.run_sync(requests(2))  # fewer failures than stop the stream: each item says why it failed
    assert [r.error.split(": ")[0] for r in results] == [f"connection refused at {url}"] * 2
    assert all("Connect call failed" in r.error for r in results)
    assert client.usage.last_error == results[-1].error


def test_answers_received_before_the_endpoint_went_down_are_delivered_first(fake_llm: FakeLLM, tmp_path: Path) -> None:
    with LLMClient.from_settings(settings_for(fake_llm, tmp_path)) as client:
        client.run_sync(requests(6))  # now in the cache
    run = stream_until_it_stops(settings_for(fake_llm, tmp_path, base_url=closed_port_url()), requests(60))
    assert isinstance(run.error, EndpointUnavailable) and run.error.problem == "connection refused"
    assert sorted(r.key for r in run.results) == [f"k{i}" for i in range(6)] and all(r.ok and r.cached for r in run.results)


# The defaults run at 1/SCALE of their real durations against the fake endpoint.
SCALE = 100


def test_the_defaults_stop_a_hung_endpoint_after_one_timeout(fake_llm: FakeLLM, tmp_path: Path) -> None:
    defaults = LLMConfig()
    assert 30 < defaults.timeout <= 60  # a 30 s generation finishes; a hung server costs about a minute
    fake_llm.faults = Faults(timeout=1.0, hang=60)
    timeout = defaults.timeout / SCALE
    settings = Settings(llm={"base_url": fake_llm.base_url, "model": "fake-model", "timeout": timeout},
                        store={"data_dir": tmp_path})  # everything else at its default: retries, concurrency, breaker
    run = stream_until_it_stops(settings, requests(200))
    assert f"no answer within {timeout:g} s at {fake_llm.base_url}" in str(run.error)
    assert timeout <= run.seconds < 2 * timeout + 1  # one round of timeouts, not (1 + max_retries) per request
    assert fake_llm.stats.requests == defaults.concurrency  # that round only: no retry, no new request


def test_the_defaults_keep_a_slow_endpoint_that_answers(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.faults = Faults(latency=30 / SCALE)  # a 30 s generation
    settings = Settings(llm={"base_url": fake_llm.base_url, "model": "fake-model", "timeout": LLMConfig().timeout / SCALE},
                        store={"data_dir": tmp_path})
    with LLMClient.from_settings(settings) as client:
        results = client.run_sync(requests(40))
    assert all(r.ok for r in results) and fake_llm.stats.requests == 40


def test_server_errors_are_answers_they_never_stop_the_stream(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.faults = Faults(error_500=1.0)
    with LLMClient.from_settings(settings_for(fake_llm, tmp_path, max_retries=1)) as client:
        results = client.run_sync(requests(12))  # 24 failed attempts in a row, each answered by the server
    assert len(results) == 12 and not any(r.ok for r in results)
    assert all("500" in r.error for r in results) and fake_llm.stats.requests == 24  # bounded retries, as before


def test_ollama_provider_stops_on_a_refused_connection(tmp_path: Path) -> None:
    url = closed_port_url()
    settings = Settings(llm={"base_url": url, "model": "m", "provider": "ollama"}, store={"data_dir": tmp_path})
    run = stream_until_it_stops(settings, requests(100))
    assert str(run.error).startswith(f"LLM endpoint unavailable: connection refused at {url} ")
    assert run.seconds < 5.0


def test_malformed_answers_are_asked_again_and_kept_when_hopeless(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.faults = Faults(malformed=1.0)
    with LLMClient.from_settings(settings_for(fake_llm, tmp_path, validation_retries=2)) as client:
        results = client.run_sync(requests(5))
    assert not any(r.ok for r in results)
    assert all(r.attempts == 3 and r.raw_text and r.value is None for r in results)
    assert fake_llm.stats.requests == 15 and client.usage.validation_retries == 10
    with LLMClient.from_settings(settings_for(fake_llm, tmp_path)) as client:
        assert client.estimate(requests(5)).calls == 5  # failures are not cached


@pytest.mark.parametrize("method", ["function_calling", "json_mode"])
def test_schema_violations_are_repaired_by_a_second_call(fake_llm: FakeLLM, tmp_path: Path, method: str) -> None:
    fake_llm.faults = Faults(schema_violation=0.3, malformed=0.1, seed=3)
    cfg = settings_for(fake_llm, tmp_path, validation_retries=4, structured_output=method)
    with LLMClient.from_settings(cfg) as client:
        results = client.run_sync(requests(40))
    assert sum(r.ok for r in results) >= 38
    assert client.usage.validation_retries > 0
    failed = [r for r in results if not r.ok]
    assert all("Persona" in r.error or "JSON" in r.error for r in failed)


def test_concurrency_is_bounded_and_results_stream_before_input_ends(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.faults = Faults(latency=0.05)
    pulled = 0

    def lazily() -> Iterator[LLMRequest]:
        nonlocal pulled
        for request in requests(40):
            pulled += 1
            yield request

    async def first_result_after() -> int:
        with LLMClient.from_settings(settings_for(fake_llm, tmp_path, concurrency=4)) as client:
            stream = client.stream(lazily())
            await anext(stream)
            seen = pulled
            rest = [r async for r in stream]
            assert len(rest) == 39
            return seen

    assert asyncio.run(first_result_after()) < 20
    assert fake_llm.stats.max_in_flight == 4


def test_a_caller_that_stops_reading_early_does_not_hang(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.faults = Faults(latency=0.05)

    async def read_three_then_stop() -> int:
        with LLMClient.from_settings(settings_for(fake_llm, tmp_path, concurrency=4)) as client:
            stream = client.stream(requests(200))
            got = [await anext(stream) for _ in range(3)]
            await stream.aclose()  # what `break` in an `async for` does
            return len(got)

    # With full queues, the pool's shutdown used to wait forever on a put nobody would take.
    assert asyncio.run(asyncio.wait_for(read_three_then_stop(), timeout=20)) == 3
    assert fake_llm.stats.requests < 200


def test_requests_per_second_is_the_real_ceiling(fake_llm: FakeLLM, tmp_path: Path) -> None:
    with LLMClient.from_settings(settings_for(fake_llm, tmp_path, requests_per_second=40, concurrency=16)) as client:
        started = time.monotonic()
        client.run_sync(requests(30))
        elapsed = time.monotonic() - started
    # 30 starts spaced 25 ms apart; a limiter capped near 10 req/s (a polling one at defaults) would need 3 s
    assert 0.72 <= elapsed < 2.0


def test_estimate_counts_calls_and_tokens(fake_llm: FakeLLM, tmp_path: Path) -> None:
    with LLMClient.from_settings(settings_for(fake_llm, tmp_path, max_tokens=100)) as client:
        client.run_sync(requests(3))
        estimate = client.estimate(requests(10))
    assert (estimate.requests, estimate.cached, estimate.calls) == (10, 3, 7)
    assert estimate.max_completion_tokens == 700 and estimate.prompt_tokens > 7 * 3
    assert fake_llm.stats.requests == 3


def test_usage_is_exported_for_the_run_node(fake_llm: FakeLLM, tmp_path: Path) -> None:
    with LLMClient.from_settings(settings_for(fake_llm, tmp_path)) as client:
        client.run_sync(requests(2))
    props = client.usage.as_dict()
    assert props["llm_requests"] == 2 and props["llm_succeeded"] == 2 and props["llm_failed"] == 0
    assert all(isinstance(v, int) for k, v in props.items() if k != "llm_endpoint_calls")
    assert props["llm_endpoint_calls"] == [f"{fake_llm.base_url}: 2"]  # calls each endpoint answered


def test_doctor_reports_a_healthy_endpoint_and_a_wrong_model(fake_llm: FakeLLM, tmp_path: Path) -> None:
    assert check_endpoint(settings_for(fake_llm, tmp_path)) == []
    problems = check_endpoint(settings_for(fake_llm, tmp_path, model="no-such-model"))
    assert len(problems) == 1 and "no-such-model" in problems[0]


def test_doctor_names_a_structured_output_method_the_server_refuses(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.faults = Faults(reject_json_schema=True)
    (problem,) = check_endpoint(settings_for(fake_llm, tmp_path, structured_output="json_schema"))
    assert "refuses structured output by json_schema" in problem and "function_calling" in problem
    assert check_endpoint(settings_for(fake_llm, tmp_path, structured_output="function_calling")) == []


def test_doctor_reports_an_unreachable_endpoint(tmp_path: Path) -> None:
    settings = Settings(llm={"base_url": "http://127.0.0.1:9/v1"}, store={"data_dir": tmp_path})
    (problem,) = check_endpoint(settings)
    assert problem.startswith("cannot list models at http://127.0.0.1:9/v1: connection refused (") and "OPENAI_BASE_URL" in problem


def test_an_offline_client_estimates_but_refuses_to_call(tmp_path: Path) -> None:
    settings = Settings(store={"data_dir": tmp_path})  # no endpoint: the embedded model, not started
    with LLMClient.from_settings(settings, connect=False) as client:
        assert client.estimate(requests(4)).calls == 4
        with pytest.raises(RuntimeError, match="connect=False"):
            client.run_sync(requests(1))
    assert not (tmp_path / "llm_server" / "server.json").exists()


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_ollama_provider_through_langchain_ollama(fake_llm: FakeLLM, tmp_path: Path, method: str) -> None:
    settings = settings_for(fake_llm, tmp_path, provider="ollama", structured_output=method, validation_retries=0)
    with LLMClient.from_settings(settings) as client:
        results = client.run_sync([*requests(6), *requests(2, schema=None, prefix="plain")])
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert sum(isinstance(r.value, Persona) for r in results) == 6
    assert client.usage.completion_tokens > 0 and fake_llm.stats.requests == 8


def test_ollama_provider_retries_server_errors(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.faults = Faults(error_500=0.25, seed=5)
    with LLMClient.from_settings(settings_for(fake_llm, tmp_path, provider="ollama", max_retries=5)) as client:
        results = client.run_sync(requests(12))
    assert fake_llm.stats.outcomes["500"] > 0 and all(r.ok for r in results)


def test_ollama_provider_takes_request_params_and_passes_the_doctor(fake_llm: FakeLLM, tmp_path: Path) -> None:
    settings = settings_for(fake_llm, tmp_path, provider="ollama")
    with LLMClient.from_settings(settings) as client:
        (result,) = client.run_sync([LLMRequest(key="p", messages=[{"role": "user", "content": "hello there"}],
                                                params={"max_tokens": 7, "temperature": 0.0})])
    assert result.ok and "hello there" in str(result.value)
    assert check_endpoint(settings) == []


def test_fake_endpoint_is_controlled_over_http(fake_llm: FakeLLM, tmp_path: Path) -> None:
    root = fake_llm.base_url.removesuffix("/v1")

    def post(path: str, body: dict[str, object]) -> dict[str, object]:
        request = urllib.request.Request(root + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    assert post("/control/faults", {"error_500": 1.0})["error_500"] == 1.0
    with LLMClient.from_settings(settings_for(fake_llm, tmp_path, max_retries=0)) as client:
        (result,) = client.run_sync(requests(1))
    assert not result.ok and "500" in result.error
    with urllib.request.urlopen(root + "/control/stats", timeout=5) as response:
        assert json.loads(response.read())["outcomes"] == {"500": 1}
    post("/control/reset", {})
    assert fake_llm.stats.requests == 0
