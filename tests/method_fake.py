"""The test endpoint for the whole method: extraction, judging, expansion and synthesis answered alike every run.

Extraction of a text of the README's corpus (docs/examples/texts.jsonl) is answered with the persona a
capable model would give (`READERS`), expansion with the expansion fake's proposals, judge scores and
synthesis text with values made from the schema. Used by the API tests and by the docs/python.md test.
"""

from __future__ import annotations

import json

from aiohttp import web

from tests.expand_fake import ExpandFakeLLM

# Who a capable model would say reads each text of the README's corpus (keyed by a word of the text).
READERS = {
    "rye starter": ("A home baker in Vermont who keeps a notebook of every sourdough loaf she bakes", "adult"),
    "Blender": ("A freelance 3D artist in Warsaw who renders product animations overnight on two GPUs", "young_adult"),
    "footbridge": ("A commuter in Millbrook who cycles to the station across the river every weekday", "adult"),
    "volcano": ("A nine-year-old boy who loves kitchen science experiments with his older sister", "child"),
    "insulin": ("A type 1 diabetic backpacker planning a summer trek through southern Spain", "young_adult"),
    "order pickers": ("A forklift driver in Tilburg looking for night work closer to home", "adult"),
    "Ottoman": ("A paper conservator in Istanbul who specialises in water-damaged archival bindings", "older_adult"),
    "虚拟人格": ("一位关注大模型数据合成的人工智能研究生，正在复现论文中的数学题生成实验", "young_adult"),
}


class MethodFake(ExpandFakeLLM):
    """The test endpoint for the whole method: each text's extraction answered with its reader (`READERS`),
    expansion with the expansion fake's proposals, judge scores and synthesis text made from the schema."""

    async def _chat(self, request: web.Request) -> web.Response:
        response = await super()._chat(request)
        completion = json.loads(response.body)  # type: ignore[arg-type]
        calls = completion["choices"][0]["message"].get("tool_calls") or []
        if calls and calls[0]["function"]["name"] == "ExtractedPersona":
            user = str((await request.json())["messages"][-1]["content"])
            description, age = next(v for k, v in READERS.items() if k in user)
            calls[0]["function"]["arguments"] = json.dumps({
                "description": description, "age_group": age, "occupation": "", "domain": "", "language": "",
                "visibility": "public-facing"})
        return web.json_response(completion)
