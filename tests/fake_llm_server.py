"""The project's own OpenAI-compatible test endpoint (also Ollama's /api/chat): deterministic answers, injectable faults.

Answers are made from the request: a tool call (function calling) or a JSON object (json_schema /
json mode) filled in from the JSON schema, or a line of text, each derived from a hash of the prompt,
so the same prompt always gets the same answer. Faults are drawn from a hash of (seed, prompt, how many
times this prompt was seen), so a retried call can succeed, and a rerun of the same run faults alike.

In tests::

    with fake_llm_server(Faults(error_500=0.05)) as fake:
        settings = Settings(llm={"base_url": fake.base_url})
        fake.faults = Faults(latency=0.2)          # change faults at any time
        fake.stats.requests                       # calls answered so far

From a shell or bench/: `python -m tests.fake_llm_server --port 8765 --latency 0.2`; faults can also be
changed over HTTP (POST /control/faults with a Faults JSON, GET /control/stats, POST /control/reset).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

MODEL_NAME = "fake-model"


class Faults(BaseModel):
    """What goes wrong, as fractions of calls, and how slow every answer is."""

    latency: float = Field(default=0.0, ge=0, description="seconds added to every answer")
    error_500: float = Field(default=0.0, ge=0, le=1, description="answered with HTTP 500")
    error_429: float = Field(default=0.0, ge=0, le=1, description="answered with HTTP 429 and Retry-After")
    retry_after: float = Field(default=0.01, ge=0, description="seconds asked for by a 429")
    timeout: float = Field(default=0.0, ge=0, le=1, description="answered only after `hang` seconds")
    hang: float = Field(default=30.0, ge=0)
    malformed: float = Field(default=0.0, ge=0, le=1, description="structured answer cut off mid-JSON")
    schema_violation: float = Field(default=0.0, ge=0, le=1, description="valid JSON that misses the schema")
    reject_json_schema: bool = Field(default=False, description="answer json_schema requests with HTTP 400, as llama.cpp does")
    seed: int = 0


class Stats(BaseModel):
    """What the server has seen: calls in total and by outcome."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    outcomes: Counter[str] = Field(default_factory=Counter)


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from `parts`."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def fake_value(schema: dict[str, Any], defs: dict[str, Any], seed: str, name: str = "value") -> Any:
    """A value that fits `schema` (the subset pydantic emits), derived from `seed`."""
    if "$ref" in schema:
        return fake_value(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, seed, name)
    for union in ("anyOf", "oneOf"):
        if union in schema:
            options = [s for s in schema[union] if s.get("type") != "null"] or schema[union]
            return fake_value(options[0], defs, seed, name)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][int(_unit(seed, name) * len(schema["enum"]))]
    kind = schema.get("type", "string")
    if kind == "object":
        props = schema.get("properties", {})
        return {key: fake_value(sub, defs, seed, key) for key, sub in props.items()}
    if kind == "array":
        count = max(int(schema.get("minItems", 0)), min(2, int(schema.get("maxItems", 2))))
        return [fake_value(schema.get("items", {}), defs, f"{seed}/{i}", name) for i in range(count)]
    if kind == "integer":
        low, high = int(schema.get("minimum", 0)), int(schema.get("maximum", 99))
        return low + int(_unit(seed, name) * (high - low + 1))
    if kind == "number":
        low, high = float(schema.get("minimum", 0.0)), float(schema.get("maximum", 1.0))
        return round(low + _unit(seed, name) * (high - low), 3)
    if kind == "boolean":
        return _unit(seed, name) < 0.5
    text = f"{name.replace('_', ' ')} {hashlib.sha1(f'{seed}/{name}'.encode()).hexdigest()[:10]}"
    text = text.ljust(int(schema.get("minLength", 0)), "x")
    return text[: int(schema["maxLength"])] if "maxLength" in schema else text


def _schema_in_messages(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The JSON schema a json-mode prompt spells out after 'JSON schema:', if any."""
    for message in reversed(messages):
        content = str(message.get("content") or "")
        at = content.rfind("JSON schema:")
        if at >= 0:
            with contextlib.suppress(ValueError):
                return json.loads(content[at + len("JSON schema:"):].strip())
    return None


class FakeLLM:
    """The server: `base_url`, mutable `faults`, `stats`; runs in a thread (`start`) or the caller's loop (`serve`)."""

    def __init__(self, faults: Faults | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.faults = faults or Faults()
        self.stats = Stats()
        self.host, self.port = host, port
        self._seen: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint."""
        return f"http://{self.host}:{self.port}/v1"

    def reset(self) -> None:
        """Forget counts and seen prompts (faults stay)."""
        self.stats = Stats()
        self._seen.clear()

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/api/chat", self._ollama_chat)
        app.router.add_post("/control/faults", self._set_faults)
        app.router.add_get("/control/stats", self._get_stats)
        app.router.add_post("/control/reset", self._reset)
        return app

    async def serve(self) -> None:
        """Start listening on the running loop; sets `port` when it was 0."""
        # Cancel a hung answer when the client gives up, and do not wait for hung ones on shutdown.
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> FakeLLM:
        """Serve from a daemon thread with its own event loop; returns when listening."""
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-llm", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Stop the thread started by `start`."""
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL_NAME, "object": "model", "owned_by": "tests"}]})

    async def _set_faults(self, request: web.Request) -> web.Response:
        self.faults = Faults.model_validate(await request.json())
        return web.json_response(self.faults.model_dump())

    async def _get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.model_dump())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({})

    def _outcome(self, prompt_key: str) -> str:
        """Which fault (or 'ok') this call of this prompt gets."""
        f = self.faults
        attempt = self._seen[prompt_key]
        self._seen[prompt_key] += 1
        u = _unit(f.seed, prompt_key, attempt)
        for outcome, rate in (("500", f.error_500), ("429", f.error_429), ("timeout", f.timeout),
                              ("malformed", f.malformed), ("schema_violation", f.schema_violation)):
            if u < rate:
                return outcome
            u -= rate
        return "ok"

    async def _chat(self, request: web.Request) -> web.Response:
        return await self._call(await request.json(), ollama=False)

    async def _ollama_chat(self, request: web.Request) -> web.Response:
        return await self._call(await request.json(), ollama=True)

    async def _call(self, body: dict[str, Any], ollama: bool) -> web.Response:
        """Count the call, draw its outcome, answer it in the OpenAI or the Ollama wire format."""
        faults = self.faults
        if faults.reject_json_schema and (body.get("response_format") or {}).get("type") == "json_schema":
            return web.json_response({"error": {"message": "response_format json_schema is not supported"}}, status=400)
        messages = body.get("messages", [])
        prompt = json.dumps(messages, sort_keys=True, ensure_ascii=False)
        prompt_key = hashlib.sha1(prompt.encode()).hexdigest()
        outcome = self._outcome(prompt_key)
        stats = self.stats
        stats.requests += 1
        stats.outcomes[outcome] += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            if faults.latency:
                await asyncio.sleep(faults.latency)
            if outcome == "500":
                return web.json_response({"error": {"message": "injected server error", "type": "server_error"}}, status=500)
            if outcome == "429":
                headers = {"retry-after-ms": str(int(faults.retry_after * 1000)), "Retry-After": f"{faults.retry_after:g}"}
                return web.json_response({"error": {"message": "injected rate limit", "type": "rate_limit"}},
                                         status=429, headers=headers)
            if outcome == "timeout":
                await asyncio.sleep(faults.hang)
            text, tool = _answer(body, messages, prompt_key, outcome)
            prompt_tokens = sum(len(str(m.get("content") or "")) for m in messages) // 4 + 1
            completion_tokens = len(text) // 4 + 1
            if ollama:
                return _ollama_response(body, text, tool, prompt_tokens, completion_tokens)
            return web.json_response(_openai_response(body, prompt_key, text, tool, prompt_tokens, completion_tokens))
        finally:
            stats.in_flight -= 1


def _answer(body: dict[str, Any], messages: list[dict[str, Any]], seed: str, outcome: str) -> tuple[str, str | None]:
    """The answer's text (JSON when a schema is asked for) and the name of the tool it calls, if any."""
    tool = None
    choice = body.get("tool_choice")
    tools = body.get("tools") or []
    if tools and choice != "none":  # Ollama sends no tool_choice: call the first tool
        wanted = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        tool = next((t["function"] for t in tools if t["function"]["name"] == wanted), tools[0]["function"])
    response_format = body.get("response_format") or {}
    ollama_format = body.get("format")
    schema: dict[str, Any] | None = None
    if tool is not None:
        schema = tool.get("parameters", {})
    elif response_format.get("type") == "json_schema":
        schema = response_format["json_schema"]["schema"]
    elif isinstance(ollama_format, dict):
        schema = ollama_format
    elif response_format.get("type") == "json_object" or ollama_format == "json":
        schema = _schema_in_messages(messages) or {"type": "object", "properties": {"answer": {"type": "string"}}}
    if schema is None:
        last = str(messages[-1].get("content", "")) if messages else ""
        return f"A person {seed[:8]} who would care about: {' '.join(last.split()[:12])}", None
    value = fake_value(schema, schema.get("$defs", {}), seed)
    if outcome == "schema_violation":
        value = {key: [] for key in schema.get("required", [])} or {"unexpected": True}
    text = json.dumps(value, ensure_ascii=False)
    if outcome == "malformed":
        text = text[: max(1, len(text) // 2)]
    return text, tool["name"] if tool else None


def _openai_response(body: dict[str, Any], seed: str, text: str, tool: str | None,
                     prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """A chat.completion object."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool is not None:
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{seed[:12]}", "type": "function", "function": {"name": tool, "arguments": text}}]}
    return {
        "id": f"chatcmpl-{seed[:16]}",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", MODEL_NAME),
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool else "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _ollama_response(body: dict[str, Any], text: str, tool: str | None,
                     prompt_tokens: int, completion_tokens: int) -> web.Response:
    """Ollama's /api/chat answer: NDJSON chunks when streaming (its default), else one object."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool is not None:
        try:  # Ollama sends tool arguments as an object; broken JSON can only come back as content
            message = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": tool, "arguments": json.loads(text)}}]}
        except ValueError:
            pass
    base = {"model": body.get("model", MODEL_NAME), "created_at": "2026-01-01T00:00:00Z"}
    final = {**base, "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
             "prompt_eval_count": prompt_tokens, "eval_count": completion_tokens}
    if not body.get("stream", True):
        return web.json_response({**final, "message": message})
    lines = [{**base, "message": message, "done": False}, final]
    return web.Response(text="".join(json.dumps(line) + "\n" for line in lines), content_type="application/x-ndjson")


@contextlib.contextmanager
def fake_llm_server(faults: Faults | None = None) -> Iterator[FakeLLM]:
    """A running test endpoint on a free loopback port, stopped on exit."""
    server = FakeLLM(faults).start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def fake_llm_subprocess(faults: Faults | None = None, module: str = "tests.fake_llm_server",
                        extra: Sequence[str] = ()) -> Iterator[str]:
    """A test endpoint (`module`'s main) in a child process, its own interpreter as in bench/; yields its base_url."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in (faults or Faults()).model_dump().items()]
    process = subprocess.Popen([sys.executable, "-m", module, f"--port={port}", *extra, *flags],
                               stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "fake LLM endpoint" not in line:
            raise RuntimeError(f"{module} did not start: {line!r}")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(10)


def command_line(description: str, port: int) -> argparse.ArgumentParser:
    """The options every fake endpoint takes from the command line: host, port and each fault."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    for name, spec in Faults.model_fields.items():
        kind = (lambda v: v.lower() in ("1", "true", "yes")) if isinstance(spec.default, bool) else type(spec.default)
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=spec.default,
                            help=spec.description)
    return parser


def faults_from(args: argparse.Namespace) -> Faults:
    """The faults named on the command line (see `command_line`)."""
    return Faults(**{name: getattr(args, name) for name in Faults.model_fields})


def serve_forever(server: FakeLLM) -> None:
    """Serve in the foreground until interrupted; the first line printed says where (launchers wait for it)."""

    async def run() -> None:
        await server.serve()
        print(f"fake LLM endpoint at {server.base_url}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def main() -> None:
    """Run the test endpoint in the foreground (for bench/ and manual checks)."""
    args = command_line(__doc__.splitlines()[0], 8765).parse_args()
    serve_forever(FakeLLM(faults_from(args), args.host, args.port))


if __name__ == "__main__":
    main()
