"""Item rate of our LLM layer against a bare async loop of the openai client, same requests, same run.

    python -m bench.bench_llm --n 2000 --concurrency 64 --latency 0.2

Both sides send the same structured (function-calling) requests to the project's fake endpoint,
run in a child process; caching is off. Reported: items/s, the ratio ours / bare, and CPU ms per item
in this process, whose difference is what our layer costs beyond the HTTP client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import openai
from pydantic import BaseModel, Field

from personagraph.config import Settings
from personagraph.llm import LLMClient, LLMRequest
from tests.fake_llm_server import Faults, fake_llm_subprocess


class BenchPersona(BaseModel):
    """A structured answer of the extract stage's shape."""

    description: str = Field(min_length=5)
    age_group: str
    occupation: str
    domain: str


def messages(i: int) -> list[dict[str, str]]:
    """A prompt of realistic length for item `i`."""
    return [
        {"role": "system", "content": "You infer who would read a text. Answer by calling the tool."},
        {"role": "user", "content": f"Text {i}: " + "a passage about clinical nursing practice " * 12},
    ]


def tool_spec(schema: type[BaseModel]) -> dict[str, Any]:
    """The function-calling tool our layer sends for `schema`."""
    return {"type": "function", "function": {
        "name": schema.__name__, "description": schema.__doc__, "parameters": schema.model_json_schema()}}


async def bare_loop(base_url: str, prompts: list[list[dict[str, str]]], schema: type[BaseModel] | None, concurrency: int,
                    timeout: float = 60.0) -> int:
    """A bare worker pool on `openai.AsyncOpenAI` with the aiohttp transport; returns answers parsed.

    With `schema`, a forced function call whose arguments are parsed as JSON; with None, plain text answers.
    """
    structured: dict[str, Any] = {} if schema is None else {
        "tools": [tool_spec(schema)], "tool_choice": {"type": "function", "function": {"name": schema.__name__}}}
    ok = 0
    async with openai.AsyncOpenAI(base_url=base_url, api_key="x", timeout=timeout,
                                  http_client=openai.DefaultAioHttpClient(timeout=timeout)) as client:
        queue: asyncio.Queue[list[dict[str, str]] | None] = asyncio.Queue()
        for messages in prompts:
            queue.put_nowait(messages)
        for _ in range(concurrency):
            queue.put_nowait(None)

        async def worker() -> None:
            nonlocal ok
            while (messages := await queue.get()) is not None:
                response = await client.chat.completions.create(
                    model="fake-model", messages=messages, temperature=0.7, max_tokens=512, **structured)  # type: ignore[arg-type]
                message = response.choices[0].message
                if schema is None:
                    ok += bool(message.content)
                else:
                    json.loads(message.tool_calls[0].function.arguments)  # type: ignore[index, union-attr]
                    ok += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


async def our_layer(base_url: str, n: int, concurrency: int, timeout: float, data_dir: Path) -> int:
    """The same requests through `LLMClient.stream`; returns answers validated."""
    settings = Settings(llm={"base_url": base_url, "model": "fake-model", "cache": False, "concurrency": concurrency,
                             "timeout": timeout}, store={"data_dir": data_dir})
    client = LLMClient.from_settings(settings)
    requests = (LLMRequest(key=str(i), messages=messages(i), schema=BenchPersona) for i in range(n))
    return sum([r.ok async for r in client.stream(requests)])


def measure(run: Any) -> tuple[float, float, int]:
    """Run a coroutine factory; returns (items/s, CPU ms per item, ok)."""
    cpu, wall = time.process_time(), time.perf_counter()
    ok = asyncio.run(run())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return ok / wall, 1000 * cpu / max(ok, 1), ok


def main() -> None:
    """Run both sides (bare first, ours second, then again) and print the table."""
    parser = argparse.ArgumentParser(description="LLM layer vs bare openai loop")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with fake_llm_subprocess(Faults(latency=args.latency)) as base_url, TemporaryDirectory() as tmp:
        rows: dict[str, list[tuple[float, float, int]]] = {"bare openai+aiohttp": [], "personagraph LLMClient": []}
        for _ in range(args.rounds):
            rows["bare openai+aiohttp"].append(
                measure(lambda: bare_loop(base_url, [messages(i) for i in range(args.n)], BenchPersona, args.concurrency)))
            rows["personagraph LLMClient"].append(
                measure(lambda: our_layer(base_url, args.n, args.concurrency, 60.0, Path(tmp))))
    print(f"n={args.n} concurrency={args.concurrency} latency={args.latency}s rounds={args.rounds} (best round)")
    print("  rounds (items/s):", "; ".join(f"{b[0]:.0f} vs {o[0]:.0f}" for b, o in zip(*rows.values())))
    best = {label: max(runs) for label, runs in rows.items()}
    for label, (rate, cpu_ms, ok) in best.items():
        print(f"  {label:24s} {rate:8.1f} items/s  {cpu_ms:6.3f} CPU ms/item  ok={ok}")
    (bare_rate, bare_cpu, _), (our_rate, our_cpu, _) = best.values()
    print(f"  ratio ours/bare          {our_rate / bare_rate:8.3f}")
    print(f"  CPU ms/item beyond the HTTP client {our_cpu - bare_cpu:6.3f}")


if __name__ == "__main__":
    main()
