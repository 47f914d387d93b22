"""The LLM response cache (pipeline/llm/cache.py) on a full disk: one error naming the file, and a run that stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from personagraph.config import Settings
from personagraph.llm import LLMClient, LLMRequest, ResponseCache
from personagraph.llm.cache import CachedAnswer, CacheWriteError
from tests.fake_llm_server import FakeLLM


def fill_the_disk(cache: ResponseCache) -> None:
    """What a full disk does to the cache file: SQLite can add no page to it (SQLITE_FULL)."""
    pages = cache._db.execute("PRAGMA page_count").fetchone()[0]
    cache._db.execute(f"PRAGMA max_page_count = {pages}")


def test_a_full_disk_is_one_error_naming_the_file_and_what_was_stored_is_kept(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    cache.put("kept", CachedAnswer(raw_text="an answer stored before the disk filled"))
    fill_the_disk(cache)
    with pytest.raises(CacheWriteError, match=f"^disk full at {cache.path}: .* free some space and rerun"):
        for i in range(100):
            cache.put(f"k{i}", CachedAnswer(raw_text="x" * 4000))
    with pytest.raises(CacheWriteError, match="^disk full"):  # the run feeding requests stops at its next lookup
        cache.get("kept")
    cache.close()
    reopened = ResponseCache(tmp_path)
    assert reopened.get("kept") == CachedAnswer(raw_text="an answer stored before the disk filled")


def test_a_run_stops_when_its_answers_cannot_be_stored(fake_llm: FakeLLM, tmp_path: Path) -> None:
    settings = Settings(llm={"base_url": fake_llm.base_url, "model": "fake-model", "timeout": 5.0, "concurrency": 2},
                        store={"data_dir": tmp_path})
    cache = ResponseCache(tmp_path / "llm_cache")
    fill_the_disk(cache)
    requests = (LLMRequest(key=f"k{i}", messages=[{"role": "user", "content": f"a text about bees, number {i} " + "x" * 3000}])
                for i in range(200))
    with LLMClient(settings.llm, settings.llm.base_url, cache) as client, pytest.raises(CacheWriteError, match="^disk full"):
        client.run_sync(requests)
    assert fake_llm.stats.requests < 20
