"""Several endpoints behind one client: the load shared, a failing one sat out and taken back, each one checked.

The endpoints are the project's fake server in child processes of their own (as a fleet of vLLM
servers would be), controlled and counted over its HTTP control routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from personagraph.config import Settings, load_settings
from personagraph.graph.store import GraphStore
from personagraph.llm import EndpointUnavailable, LLMClient, LLMRequest, LLMResult, check_endpoint
from tests.conftest import graph_on
from tests.fake_llm_server import Faults, fake_llm_subprocess
from tests.test_llm import Persona, closed_port_url, requests, stream_until_it_stops


def control(base_url: str, route: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """GET (or POST `body` to) one of the fake endpoint's /control routes."""
    url = base_url.removesuffix("/v1") + f"/control/{route}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def fleet_settings(urls: list[str], tmp_path: Path, **llm: object) -> Settings:
    """Settings for a fleet of endpoints, no cache (every request is a call), small retries."""
    base = {"base_url": urls, "model": "fake-model", "timeout": 5.0, "max_retries": 2, "concurrency": 16, "cache": False}
    return Settings(llm={**base, **llm}, store={"data_dir": tmp_path})


def answered(urls: list[str]) -> list[int]:
    """Calls each endpoint answered."""
    return [control(url, "stats")["requests"] for url in urls]


@pytest.fixture(scope="module")
def two_endpoints() -> Any:
    """Two fake endpoints in processes of their own for the module; faults and counts reset per test."""
    with fake_llm_subprocess() as a, fake_llm_subprocess() as b:
        yield [a, b]


@pytest.fixture
def fleet(two_endpoints: list[str]) -> list[str]:
    for url in two_endpoints:
        control(url, "faults", Faults().model_dump())
        control(url, "reset", {})
    return two_endpoints


def test_a_list_or_comma_separated_urls_configure_a_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://a:8000/v1, http://b:8000/v1")
    assert Settings().llm.base_urls == ["http://a:8000/v1", "http://b:8000/v1"]
    monkeypatch.delenv("OPENAI_BASE_URL")
    toml = tmp_path / "personagraph.toml"
    toml.write_text('[llm]\nbase_url = ["http://a:8000/v1", "http://b:8000/v1", "http://a:8000/v1"]\n')
    assert load_settings(toml).llm.base_url == ["http://a:8000/v1", "http://b:8000/v1"]  # the same server once
    toml.write_text('[llm]\nbase_url = "http://a:8000/v1"\n')
    assert load_settings(toml).llm.base_url == "http://a:8000/v1"  # one URL stays a string


def test_two_endpoints_share_the_load(fleet: list[str], tmp_path: Path) -> None:
    for url in fleet:
        control(url, "faults", Faults(latency=0.01).model_dump())
    with LLMClient.from_settings(fleet_settings(fleet, tmp_path)) as client:
        results = client.run_sync(requests(300))
    assert len(results) == 300 and all(r.ok for r in results)
    served = answered(fleet)
    assert sum(served) == 300 and min(served) >= 300 * 0.35, served  # both take a substantial share
    assert client.usage.endpoint_calls == dict(zip(fleet, served))
    assert {r.endpoint for r in results} == set(fleet)
    assert client.usage.endpoint_line().count("/v1 ") == 2


def test_an_endpoint_answering_500_is_taken_out_and_the_others_answer_everything(fleet: list[str], tmp_path: Path) -> None:
    good, bad = fleet
    control(bad, "faults", Faults(error_500=1.0).model_dump())
    with LLMClient.from_settings(fleet_settings(fleet, tmp_path, endpoint_cooldown=60)) as client:
        results = client.run_sync(requests(200))
    assert len(results) == 200 and all(r.ok for r in results)
    assert client.usage.endpoint_calls == {good: 200} and client.usage.endpoints_taken_out == 1
    assert answered(fleet)[1] <= 5 + 16  # taken out after 5 in a row; at most the calls already in flight more


def test_an_endpoint_that_comes_back_after_its_cooldown_serves_again(fleet: list[str], tmp_path: Path) -> None:
    good, bad = fleet
    control(bad, "faults", Faults(error_500=1.0).model_dump())
    control(good, "faults", Faults(latency=0.02).model_dump())
    seen: list[LLMResult] = []
    mended_at: list[int] = []

    async def run() -> None:
        with LLMClient.from_settings(fleet_settings(fleet, tmp_path, endpoint_cooldown=0.3, concurrency=8)) as client:
            async for result in client.stream(requests(1000)):
                seen.append(result)
                if client.usage.endpoints_taken_out and not mended_at:  # mend it while it sits out
                    await asyncio.to_thread(control, bad, "faults", Faults(latency=0.02).model_dump())
                    mended_at.append(len(seen))
            assert mended_at and mended_at[0] < 500, mended_at
            assert client.usage.endpoint_calls.get(bad, 0) > 100  # back in after its cool-down, with its share
            assert client.usage.endpoints_taken_out == 1

    asyncio.run(run())
    assert len(seen) == 1000 and all(r.ok for r in seen)


def test_a_killed_endpoint_is_taken_out_mid_run_and_the_run_completes(tmp_path: Path) -> None:
    seen: list[LLMResult] = []
    with contextlib.ExitStack() as doomed, fake_llm_subprocess(Faults(latency=0.02)) as survivor:
        victim = doomed.enter_context(fake_llm_subprocess(Faults(latency=0.02)))

        async def run() -> None:
            with LLMClient.from_settings(fleet_settings([survivor, victim], tmp_path, endpoint_cooldown=60)) as client:
                async for result in client.stream(requests(300)):
                    seen.append(result)
                    if len(seen) == 60:
                        await asyncio.to_thread(doomed.close)  # the process is terminated with calls in flight
                assert client.usage.endpoints_taken_out == 1
                assert client.usage.endpoint_calls[survivor] > 150

        asyncio.run(run())
    assert sorted(r.key for r in seen) == sorted(f"k{i}" for i in range(300)) and all(r.ok for r in seen)


def test_when_every_endpoint_is_out_the_error_names_each_one(tmp_path: Path) -> None:
    urls = [closed_port_url(), closed_port_url()]
    run = stream_until_it_stops(fleet_settings(urls, tmp_path), requests(300))
    assert isinstance(run.error, EndpointUnavailable) and len(run.error.failures) == 2
    message = str(run.error)
    assert message.startswith("all 2 LLM endpoints unavailable: ")
    assert all(f"connection refused at {url} (" in message for url in urls)
    assert run.seconds < 10.0 and run.results == []


def test_a_stage_completes_every_row_with_one_endpoint_failing(fleet: list[str], store: GraphStore, tmp_path: Path) -> None:
    good, bad = fleet
    control(bad, "faults", Faults(error_500=1.0).model_dump())
    g = graph_on(store, tmp_path / "cache", llm={"base_url": fleet, "model": "fake-model", "max_retries": 1})
    personas = tmp_path / "personas.jsonl"
    personas.write_text("".join(json.dumps({"persona": f"A nurse in rural clinic number {i} who trains midwives"}) + "\n"
                                for i in range(40)))
    g.import_personas(personas)
    summary = g.synthesize("math_problem", tmp_path / "math.jsonl", count=40)
    g.llm.close()
    assert summary.written == 40 and summary.failed == 0
    assert len((tmp_path / "math.jsonl").read_text().splitlines()) == 40
    assert g.llm.usage.endpoint_calls == {good: 40}
    run = g.query("MATCH (r:Run {stage: 'synthesize'}) RETURN r.llm_endpoint_calls AS calls")
    assert run == [{"calls": [f"{good}: 40"]}]


def test_doctor_checks_every_endpoint(fleet: list[str], tmp_path: Path) -> None:
    dead = closed_port_url()
    assert check_endpoint(fleet_settings(fleet, tmp_path)) == []
    (problem,) = check_endpoint(fleet_settings([fleet[0], dead], tmp_path))
    assert problem.startswith(f"cannot list models at {dead}: connection refused")


def test_one_request_list_reaches_every_endpoint_only_once_each(fleet: list[str], tmp_path: Path) -> None:
    """Failover never answers a request twice: one result per request, whatever endpoint took it."""
    control(fleet[1], "faults", Faults(error_500=1.0).model_dump())
    items = [LLMRequest(key=f"k{i}", messages=[{"role": "user", "content": f"text {i}"}], schema=Persona) for i in range(120)]
    with LLMClient.from_settings(fleet_settings(fleet, tmp_path)) as client:
        results = client.run_sync(items)
    assert sorted(r.key for r in results) == sorted(f"k{i}" for i in range(120))
