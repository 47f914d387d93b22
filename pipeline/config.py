"""The one configuration model: read once at the edge (CLI or Python API) and passed down.

Sources, highest priority first: explicit overrides (CLI flags), environment variables
(`PERSONAGRAPH_<SECTION>__<KEY>`, e.g. `PERSONAGRAPH_LLM__MODEL`, plus the standard `OPENAI_BASE_URL`,
`OPENAI_API_KEY`, `NEO4J_URI`, `NEO4J_USER`, `NEO4J_PASSWORD`), the TOML file
(`personagraph.toml` in the working directory, or the path in `PERSONAGRAPH_CONFIG`), defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_NAME = "personagraph.toml"


class StoreConfig(BaseModel):
    """Where the graph lives: the embedded FalkorDB folder, or a Neo4j URI."""

    uri: str = Field(
        default="embedded",
        description="'embedded' (FalkorDB child process in `data_dir`), or neo4j://host:7687 / bolt://...",
    )
    data_dir: Path = Field(default=Path(".personagraph"), description="Folder of the embedded store, caches and indexes")
    graph: str = Field(default="personas", description="Graph name (FalkorDB key) or Neo4j database name ('' = default)")
    user: str = "neo4j"
    password: SecretStr = SecretStr("")
    batch_size: int = Field(default=5000, ge=1, description="Rows per UNWIND write query")
    save_points: str = Field(default="3600 1 300 100 60 10000", description="RDB save points of the embedded server")


class ImportConfig(BaseModel):
    """Bounds for imported persona descriptions."""

    min_chars: int = 8
    max_chars: int = 4000


class Settings(BaseSettings):
    """All of personagraph's settings. Stage sections are added beside `store` as the stages land."""

    model_config = SettingsConfigDict(
        env_prefix="PERSONAGRAPH_",
        env_nested_delimiter="__",
        extra="ignore",
        toml_file=CONFIG_FILE_NAME,
    )

    store: StoreConfig = Field(default_factory=StoreConfig)
    import_: ImportConfig = Field(default_factory=ImportConfig, alias="import")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get("PERSONAGRAPH_CONFIG", CONFIG_FILE_NAME)
        return (
            init_settings,
            env_settings,
            _StandardEnvSource(settings_cls),
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )


class _StandardEnvSource(PydanticBaseSettingsSource):
    """Maps the ecosystem's standard variables (OPENAI_*, NEO4J_*) onto our sections."""

    MAPPING: dict[str, tuple[str, str]] = {
        "NEO4J_URI": ("store", "uri"),
        "NEO4J_USER": ("store", "user"),
        "NEO4J_USERNAME": ("store", "user"),
        "NEO4J_PASSWORD": ("store", "password"),
        "NEO4J_DATABASE": ("store", "graph"),
        "OPENAI_BASE_URL": ("llm", "base_url"),
        "OPENAI_API_KEY": ("llm", "api_key"),
        "OPENAI_MODEL": ("llm", "model"),
    }

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, dict[str, Any]] = {}
        for var, (section, key) in self.MAPPING.items():
            value = os.environ.get(var)
            if value and section in self.settings_cls.model_fields:
                out.setdefault(section, {})[key] = value
        return out


def load_settings(config_path: Path | None = None, **overrides: Any) -> Settings:
    """Read the settings once: TOML file (explicit path or default), env, then `overrides`."""
    if config_path is not None:
        if not config_path.exists():
            raise FileNotFoundError(f"config file {config_path} does not exist")
        os.environ["PERSONAGRAPH_CONFIG"] = str(config_path)
    return Settings(**overrides)


def write_default_config(path: Path) -> None:
    """Write a commented starter `personagraph.toml` (used by `personagraph init`)."""
    path.write_text(DEFAULT_TOML, encoding="utf-8")


DEFAULT_TOML = """\
# personagraph configuration. Environment variables override it:
#   PERSONAGRAPH_<SECTION>__<KEY>   e.g. PERSONAGRAPH_STORE__BATCH_SIZE=2000
#   OPENAI_BASE_URL / OPENAI_API_KEY select an OpenAI-compatible LLM endpoint
#   NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD select a Neo4j server instead of the embedded store

[store]
uri = "embedded"            # or "neo4j://localhost:7687"
data_dir = ".personagraph"  # embedded store, LLM cache and dedup indexes live here
graph = "personas"
batch_size = 5000

[import]
min_chars = 8
max_chars = 4000
"""
