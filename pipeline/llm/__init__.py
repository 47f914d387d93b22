"""The LLM layer every stage calls: one client, many requests, results streamed back as they finish.

Usage (a stage)::

    from personagraph.llm import LLMClient, LLMRequest
    from personagraph import prompts

    with LLMClient.from_settings(settings) as client:          # no llm.base_url -> embedded SmolLM2
        requests = (
            LLMRequest(key=text_id, messages=prompts.load("extract/read", "en").render(text=text),
                       schema=PersonaOut, meta=text_id)
            for text_id, text in texts                          # pulled lazily, never all in memory
        )
        async for result in client.stream(requests):            # completion order
            if result.ok:
                use(result.value)                               # a PersonaOut instance (or str if schema=None)
            else:
                record_failure(result.key, result.error, result.raw_text)
        run_props = client.usage.as_dict()                      # llm_requests, llm_cached, llm_failed, tokens...

`client.run_sync(requests)` does the same from synchronous code and returns a list;
`client.estimate(requests)` counts calls and rough tokens for `--dry-run` without calling;
`check_endpoint(settings)` lists what is wrong with the configured endpoint (for `personagraph doctor`).

What the layer guarantees:
- LangChain chat model (`init_chat_model`, provider openai or ollama) on the openai client's aiohttp
  transport, with a timeout on every call and the openai client's retries (`max_retries`, exponential
  backoff with jitter, honouring Retry-After) on 429 / 5xx / timeouts / connection errors.
- A dead endpoint stops the stream: `max_consecutive_failures` attempts in a row refused, unresolvable
  or unanswered within `timeout` raise `EndpointUnavailable` (naming the address and the cause) after
  the answers already received, instead of failing every remaining request.
- Several endpoints (`llm.base_url` a list, or comma-separated): calls balanced by fewest outstanding,
  an endpoint failing `max_consecutive_failures` times in a row sits out a cool-down (doubling) while
  the others answer; only when all are out does the stream stop, naming each (`pipeline.llm.endpoints`).
- At most `concurrency` calls in flight (a worker pool fed lazily), optional `requests_per_second`.
- Structured answers by `structured_output` = function_calling | json_schema | json_mode, validated
  into the request's pydantic `schema`; an answer that does not fit is asked again with the error
  (`validation_retries` times), then returned as failed with its raw text. One result per request
  until the endpoint is down: a failed item never raises and never stops the run.
- Successful answers go to a SQLite (WAL) cache in `data_dir/llm_cache`, keyed by (model, messages,
  params, schema) and committed one by one, so a run killed at any point resumes without paying twice.
"""

from personagraph.llm.cache import ResponseCache
from personagraph.llm.client import (
    EndpointUnavailable,
    Estimate,
    LLMClient,
    LLMRequest,
    LLMResult,
    RateLimiter,
    Usage,
    approx_tokens,
)
from personagraph.llm.doctor import check_endpoint

__all__ = [
    "EndpointUnavailable",
    "Estimate",
    "LLMClient",
    "LLMRequest",
    "LLMResult",
    "RateLimiter",
    "ResponseCache",
    "Usage",
    "approx_tokens",
    "check_endpoint",
]
