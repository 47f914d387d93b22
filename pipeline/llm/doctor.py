"""`personagraph doctor` for the LLM endpoints: is each there, does it serve the model, does a call work."""

from __future__ import annotations

import openai
from pydantic import BaseModel

from personagraph import prompts

from personagraph.config import Settings
from personagraph.llm.client import LLMClient, LLMRequest, unreachable
from personagraph.llm.local_server import LocalModelUnavailable, ensure_local_server


def check_endpoint(settings: Settings) -> list[str]:
    """Problems with the configured LLM endpoints (each one of a fleet), each saying what to do; empty when tiny
    plain and structured calls work everywhere.

    A structured answer that comes back but does not validate is not reported: tiny models do that,
    and the stages retry and record it; a method the server refuses outright is.
    """
    cfg = settings.llm
    if cfg.base_url is None:
        try:
            return _check_one(settings, ensure_local_server(settings).base_url)
        except LocalModelUnavailable as exc:
            return [str(exc)]
    return [problem for url in cfg.base_urls for problem in _check_one(settings, url)]


def _check_one(settings: Settings, base_url: str) -> list[str]:
    """Problems with one endpoint: it lists its models (the configured one among them) and answers both kinds of call."""
    cfg = settings.llm
    problems: list[str] = []
    if cfg.provider == "openai":
        try:
            with openai.OpenAI(
                base_url=base_url, api_key=cfg.api_key.get_secret_value() or "not-needed", timeout=10.0, max_retries=0
            ) as raw:
                served = [m.id for m in raw.models.list()]
        except openai.APIError as exc:
            found = unreachable(exc, cfg)
            why = f"{found[0]} ({found[1]})" if found else str(exc)
            return [f"cannot list models at {base_url}: {why}; check OPENAI_BASE_URL / llm.base_url and OPENAI_API_KEY"]
        model = cfg.model if cfg.base_url else None
        if model and served and model not in served:
            problems.append(f"model {model!r} is not served at {base_url} (it serves {', '.join(served[:10])}); set OPENAI_MODEL / llm.model")
    probe = cfg.model_copy(update={"cache": False, "max_retries": 0, "concurrency": 1, "validation_retries": 0})
    if cfg.base_url is None:
        from personagraph.llm.local_server import LOCAL_MODEL_NAME

        probe.model = LOCAL_MODEL_NAME
    ping = prompts.load("llm/ping").render()
    plain, structured = LLMClient(probe, base_url).run_sync([
        LLMRequest(key="plain", messages=ping, params={"max_tokens": 5}),
        LLMRequest(key="structured", messages=ping, schema=Ping, params={"max_tokens": 40}),
    ])
    if not plain.ok:
        problems.append(f"a test call to {probe.model!r} at {base_url} failed: {plain.error}")
    elif not structured.ok and structured.attempts == 0:
        others = [m for m in ("function_calling", "json_mode", "json_schema") if m != cfg.structured_output]
        problems.append(
            f"{base_url} refuses structured output by {cfg.structured_output} ({structured.error[:300]}); "
            f"set llm.structured_output to {' or '.join(others)}"
        )
    return problems


class Ping(BaseModel):
    """The structured answer of the doctor's test call."""

    reply: str
