"""The one configuration model: read once at the edge (CLI or Python API) and passed down.

Sources, highest priority first: explicit overrides (CLI flags), environment variables
(`PERSONAGRAPH_<SECTION>__<KEY>`, e.g. `PERSONAGRAPH_LLM__MODEL`, plus the standard `OPENAI_BASE_URL`,
`OPENAI_API_KEY`, `NEO4J_URI`, `NEO4J_USER`, `NEO4J_PASSWORD`), the TOML file
(`personagraph.toml` in the working directory, or the path in `PERSONAGRAPH_CONFIG`), defaults.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from personagraph.graph.model import canonical_language
from personagraph.graph.store import StoreConfig
from personagraph.relations import RelationSpec
from personagraph.targets import TargetShares

CONFIG_FILE_NAME = "personagraph.toml"
# The TOML file `load_settings` was given (read by the settings source; no environment variable is written).
_config_file: ContextVar[Path | None] = ContextVar("personagraph_config_file", default=None)


# -- the method's vocabularies, defined once (config, API and CLI all use these) ----------------
class Stance(StrEnum):
    """Who a text's persona is: someone who would read, write or like it (Text-to-Persona)."""

    read = "read"
    write = "write"
    like = "like"


class Strategy(StrEnum):
    """How personas are drawn from the graph (see personagraph.sample)."""

    uniform = "uniform"
    stratified = "stratified"
    ego = "ego"
    walk = "walk"
    community = "community"
    cluster = "cluster"


class Mode(StrEnum):
    """How a synthesis prompt is built: no examples, examples, examples with their authors, the neighbours' samples,
    or the baseline without a persona (`no_persona`: the task as it reads with no one behind it, for `report`)."""

    zero_shot = "zero_shot"
    few_shot = "few_shot"
    persona_few_shot = "persona_few_shot"
    neighbourhood_few_shot = "neighbourhood_few_shot"
    no_persona = "no_persona"


class SimulationFormat(StrEnum):
    """The files `simulate` writes a cluster as: our JSON, or what a simulator loads (see personagraph.simulate)."""

    json = "json"
    oasis = "oasis"
    tinytroupe = "tinytroupe"


class DedupMethod(StrEnum):
    """Which detectors propose duplicate pairs."""

    minhash = "minhash"
    embedding = "embedding"
    both = "both"


# The sentence encoder dedup uses: ONNX Runtime (CPU, no torch), sentence-transformers (torch), or
# auto (torch only with a CUDA device).
EmbeddingBackend = Literal["auto", "onnx", "torch"]
EmbeddingPrecision = Literal["int8", "fp32"]


class Lang(StrEnum):
    """Prompt languages shipped in prompts/ (a task of your own may add others)."""

    en = "en"
    zh = "zh"


class ImportConfig(BaseModel):
    """Bounds for imported persona descriptions."""

    min_chars: int = 8
    max_chars: int = 4000


class LLMConfig(BaseModel):
    """The chat model endpoint and how we call it: any OpenAI-compatible server, Ollama, or the embedded SmolLM2."""

    provider: Literal["openai", "ollama"] = Field(default="openai", description="LangChain provider")
    base_url: str | list[str] | None = Field(
        default=None,
        description="Endpoint URL (http://host:port/v1), or several (a list, or comma-separated) balanced by the "
                    "client; None = embedded SmolLM2",
    )
    model: str = Field(default="smollm2-135m-instruct", description="Model name sent to the endpoint")
    api_key: SecretStr = Field(default=SecretStr(""), description="API key ('' sends a placeholder, fine for local servers)")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=512, ge=1, description="Completion tokens per call")
    timeout: float = Field(
        default=60.0, gt=0, description="Seconds one HTTP call may take, a whole generation (the client default is none)"
    )
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to open a connection to the endpoint")
    max_retries: int = Field(default=5, ge=0, description="Retries on 429 / 5xx / timeouts / connection errors (backoff + jitter)")
    max_consecutive_failures: int = Field(
        default=5, ge=1,
        description="Calls in a row that cannot connect or get no answer within `timeout` (with several endpoints, "
                    "also HTTP 5xx) before an endpoint is taken out; with none left the run stops",
    )
    endpoint_cooldown: float = Field(
        default=5.0, gt=0, description="Seconds an endpoint that was taken out sits out before it is tried again"
    )
    endpoint_cooldown_max: float = Field(
        default=300.0, gt=0, description="Longest cool-down (it doubles each time an endpoint fails again after coming back)"
    )
    concurrency: int = Field(default=16, ge=1, description="Calls in flight at once")
    requests_per_second: float | None = Field(default=None, gt=0, description="Optional ceiling on calls started per second")
    structured_output: Literal["json_schema", "function_calling", "json_mode"] = Field(
        default="function_calling", description="How structured answers are requested (llama.cpp's server rejects json_schema)"
    )
    validation_retries: int = Field(default=2, ge=0, description="Extra calls when an answer does not fit its schema")
    cache: bool = Field(default=True, description="Answer repeated calls from the on-disk response cache")
    cache_dir: Path | None = Field(default=None, description="Folder of the response cache (default: <data_dir>/llm_cache)")
    local_port: int = Field(default=0, ge=0, description="Port of the embedded model server (0 = pick a free one)")

    @field_validator("base_url", mode="before")
    @classmethod
    def _endpoints(cls, value: Any) -> Any:
        """`"http://a/v1, http://b/v1"` (OPENAI_BASE_URL) or a list: one URL stays a string, several a list."""
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, (list, tuple)) and all(isinstance(u, str) for u in value):
            urls = list(dict.fromkeys(u.strip() for u in value if u.strip()))  # the same server twice is one server
            return None if not urls else urls[0] if len(urls) == 1 else urls
        return value

    @property
    def base_urls(self) -> list[str]:
        """The configured endpoints as a list ([] = the embedded model)."""
        return [] if self.base_url is None else [self.base_url] if isinstance(self.base_url, str) else list(self.base_url)


class DedupConfig(BaseModel):
    """Near-duplicate detection: MinHash LSH over character or word shingles and embedding cosine (see docs/dedup.md)."""

    method: DedupMethod = Field(default=DedupMethod.both, description="Which detectors propose pairs")
    shingles: Literal["chars", "words"] = Field(
        default="chars", description="MinHash shingle unit: characters (any script, typo-tolerant) or words"
    )
    shingle_size: int = Field(default=3, ge=1, description="Tokens (characters or words) per MinHash shingle")
    num_perm: int = Field(default=128, ge=16, description="MinHash permutations")
    minhash_threshold: float = Field(
        default=0.3, gt=0, le=1,
        description="Method 'both': the estimated Jaccard at which MinHash proposes a pair for the checks below",
    )
    trust_jaccard: float = Field(
        default=0.7, gt=0, le=1, description="Method 'minhash': the estimated Jaccard of a duplicate (nothing confirms it)"
    )
    embedding_threshold: float = Field(default=0.9, gt=0, le=1, description="Cosine similarity of duplicates")
    verify_cosine: float = Field(
        default=0.86, ge=-1, le=1, description="Method 'both': the cosine that confirms a pair MinHash proposed (0.82 finds 1% more edited copies of real personas but merges template-made different people)"
    )
    shape_cosine: float = Field(
        default=0.3, ge=-1, le=1,
        description="Method 'both': a proposed pair below `verify_cosine` is a duplicate at this cosine if the words "
                    "that differ are on one side or misspelt (docs/dedup.md)",
    )
    link_cosine: float = Field(
        default=0.5, ge=-1, le=1,
        description="Every two members of a group must reach this cosine, or `shape_cosine` with the differing words "
                    "on one side (complete linkage)",
    )
    min_jaccard: float = Field(
        default=0.1, ge=0, le=1,
        description="Method 'both': the estimated Jaccard an embedding pair must also reach (the embedding model "
                    "reads English: unrelated Chinese personas reach cosine 0.9)",
    )
    link_jaccard: float = Field(
        default=0.5, ge=0, le=1, description="Method 'minhash': every two members of a group must reach this Jaccard"
    )
    embedding_neighbours: int = Field(default=16, ge=1, description="Nearest neighbours checked per persona")
    minhash_neighbours: int = Field(
        default=16, ge=1, description="Most similar MinHash pairs kept per persona (templated text floods LSH buckets)"
    )
    ann_min_size: int | None = Field(
        default=20_000, ge=2,
        description="Personas from which embedding neighbours come from an approximate faiss IVF index instead of "
                    "exact search (None: always exact; docs/benchmarks.md)",
    )
    ann_nprobe: int = Field(default=16, ge=1, description="IVF lists searched per persona (recall of the exact pairs)")
    embed_batch_size: int = Field(default=64, ge=1)
    embedding_backend: EmbeddingBackend = Field(
        default="auto", description="Encoder: ONNX Runtime on the CPU, or sentence-transformers (auto: torch only with a CUDA device)"
    )
    embedding_precision: EmbeddingPrecision = Field(
        default="fp32",
        description="ONNX encoder: fp32 (sentence-transformers' vectors, the same whatever the batch) or int8 dense "
                    "layers with float32 outlier channels (cosine >= 0.99 to fp32, ~1.3x faster, but a vector shifts "
                    "slightly with its batch-mates); the index re-embeds when it changes",
    )
    seed: int = Field(default=1, description="MinHash permutation seed (indexes are rebuilt if it changes)")


class FilterConfig(BaseModel):
    """Persona quality filter: cheap checks, then an LLM judge (see docs/dedup.md)."""

    min_words: float = Field(
        default=2, ge=0,
        description="Fewest words that say something (articles and 'I am' do not count; in Chinese, Japanese or "
                    "Thai a word is a few characters): 'PHP programmer' and '香港电影忠实粉丝' pass, 'A nurse.' does not",
    )
    max_chars: int = Field(default=600, ge=1)
    max_char_run: int = Field(default=4, ge=2, description="Longest run of one repeated character allowed")
    languages: list[str] = Field(
        default_factory=list,
        description="Accepted languages as ISO codes, checked by script ([] = any; 'en' accepts any Latin-script text)",
    )
    max_source_overlap: float = Field(
        default=0.5, gt=0, le=1,
        description="Share of an extracted description's 3-word phrases found in its source text that makes it a copy",
    )
    max_copied_words: int = Field(
        default=12, ge=4,
        description="Words in a row taken verbatim from the source text that make a description a copy, "
                    "however much it adds after them",
    )
    max_seed_overlap: float = Field(
        default=0.85, gt=0, le=1,
        description="Share of a proposed description's 3-word phrases found in its seed persona that makes it the seed "
                    "restated (expansion); closer paraphrases are for the dedup index to link",
    )
    min_relevance: float = Field(default=0.2, ge=-1, le=1, description="Cosine to the seed persona, when there is one")
    person_probe: bool = Field(
        default=True,
        description="Reject an English description that reads as a thing, an event or a text rather than a person "
                    "(a probe on its embedding, `personagraph.probe`; it loads the embedding model)",
    )
    use_llm: bool = Field(default=True, description="Ask the LLM judge about what passes the cheap checks")
    min_scores: dict[str, int] = Field(
        default_factory=lambda: {"relevance": 3, "plausibility": 3, "specificity": 3, "readability": 3},
        description="Lowest accepted judge score (1-5) per criterion",
    )

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, value: list[str]) -> list[str]:
        codes = []
        for given in value:
            code = canonical_language(given)
            if code is None:
                raise ValueError(f"{given!r} is not a language: use ISO 639-1 codes such as en, zh, ru, th")
            codes.append(code)
        return list(dict.fromkeys(codes))


class SampleConfig(BaseModel):
    """How personas are drawn from the graph: `count` samples of `size` by `strategy`, reproducibly from `seed`.

    `min_size` (cluster only): the smallest cluster accepted; None means `size`, so every cluster has
    exactly `size` members, and 1 accepts whatever the seed's component holds.
    """

    strategy: Strategy = Field(default=Strategy.uniform, description="How personas are picked from the graph")
    size: int = Field(
        default=20, ge=1, validation_alias=AliasChoices("size", "sample_size"),
        description="Members per sample (ego, walk, community, cluster, stratified)",
    )
    count: int = Field(default=1, ge=0, description="Samples drawn")
    min_size: int | None = Field(
        default=None, ge=1, description="Smallest connected cluster accepted (cluster); unset = size, 1 = any"
    )
    hops: int = Field(default=2, ge=1, le=6, description="Radius of ego networks (and of the subgraph communities are found in)")
    stratify_by: str = Field(default="age_group", description="Persona attribute whose values get equal shares")
    weights: TargetShares = Field(
        default_factory=dict,
        description="Stratified: shares per value instead of equal ones ({attribute: {value: share}} or a targets TOML "
        "file; a single table also names the attribute stratified by)",
    )
    statuses: list[str] = Field(default_factory=lambda: ["accepted"], description="Persona statuses that may be sampled")
    seed: int = Field(default=0, description="Random seed: the same seed on the same graph gives the same samples and rows")

    model_config = {"populate_by_name": True}

    @property
    def smallest_cluster(self) -> int:
        """The fewest members a cluster may have (`min_size`, at most `size`)."""
        return min(self.min_size or self.size, self.size)


class SynthesisConfig(SampleConfig):
    """Persona-driven synthesis (see docs/synthesis.md): the sampling it draws personas with, and the prompt."""

    lang: str = Field(default=Lang.en, description="Prompt language: en or zh (or a language of your own task files)")
    mode: Mode = Mode.zero_shot
    shots: int = Field(default=3, ge=1, description="Demonstrations per prompt in the few-shot modes")
    task_dirs: list[Path] = Field(default_factory=list, description="Folders of your own task prompts (<task>.<lang>.md), searched first")
    write_back: bool = Field(default=False, description="Also store each row as a (:Sample)-[:GENERATED_BY]->(:Persona) node")

    def sampling(self) -> SampleConfig:
        """This section's sampling settings alone (what `sample` and `simulate` draw with)."""
        return SampleConfig.model_validate(self.model_dump(include=set(SampleConfig.model_fields)))


class ExpandConfig(BaseModel):
    """Persona-to-Persona expansion (see personagraph.expand and personagraph.relations), with a run's budgets."""

    hops: int = Field(default=6, ge=1, le=6, description="Deepest hop a proposed persona may get (six degrees)")
    fanout: int = Field(default=3, ge=1, le=20, description="Personas asked for per seed and relation")
    relations_per_seed: int = Field(default=3, ge=1, description="Relations asked about per seed (chosen per seed)")
    relations: list[str] = Field(default_factory=list, description="Relation names to use ([] = the whole vocabulary)")
    extra_relations: list[RelationSpec] = Field(default_factory=list, description="User relations added to the vocabulary")
    free_relations: bool = Field(default=True, description="Let the LLM name a more specific relation (validated)")
    lang: str = Field(
        default=Lang.en, validation_alias=AliasChoices("lang", "language"), description="Prompt language: en or zh"
    )
    chunk_seeds: int = Field(default=256, ge=1, description="Seeds whose proposals are written together, in seed order")
    dedup: Literal["index", "exact"] = Field(
        default="index", description="Match proposals to existing personas with the dedup index, or by exact text only"
    )
    relevance_check: bool = Field(default=True, description="Inline filter also checks embedding relevance to the seed")
    max_new: int | None = Field(default=None, ge=0, description="Stop after creating this many personas")
    max_calls: int | None = Field(default=None, ge=0, description="Stop after sending this many LLM requests")
    focus: dict[str, list[str]] = Field(default_factory=dict, description="Regions to aim at: {attribute: [values]}")
    target: TargetShares = Field(
        default_factory=dict,
        description="Shares wanted per region value ({attribute: {value: share}}, or a targets TOML file); each round "
        "focuses on the values furthest below target",
    )
    tolerance: float = Field(default=0.02, ge=0, lt=1, description="A target counts as met within this share of it")
    target_values: int = Field(default=2, ge=1, description="Targeted values a round focuses on (those furthest below)")

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _focus_or_target(self) -> ExpandConfig:
        if self.focus and self.target:
            raise ValueError("give focus or target, not both: with targets each round picks its own focus")
        return self


class ExtractConfig(BaseModel):
    """Text-to-Persona: which questions are asked of each text, in what format, on what pieces."""

    stances: list[Stance] = Field(
        default=[Stance.read], min_length=1, description="Who would read / write / like the text: one persona per stance"
    )
    format: Literal["plain", "structured"] = Field(default="structured", description="Description only, or with attributes")
    lang: Literal["auto", "en", "zh"] = Field(default="auto", description="Prompt language; auto = zh for mostly-CJK texts")
    field: str | None = Field(default=None, description="Input field holding the text (found automatically when obvious)")
    min_chars: int = Field(default=40, ge=1, description="Shorter texts are skipped as near-empty")
    chunk_chars: int = Field(default=4000, ge=200, description="Longer texts are split at paragraph breaks into chunks")
    max_chunks: int = Field(default=4, ge=1, description="Chunks used per text (the rest of a very long text is ignored)")


class RunConfig(BaseModel):
    """The whole method in one call (`personagraph run`): what it writes, and a first run's small budgets."""

    output_dir: Path = Field(default=Path("out"), description="Where personas.jsonl and the synthesized rows go")
    task: str = Field(default="math_problem", description="Synthesis task (see `personagraph synthesize --list`)")
    count: int = Field(default=10, ge=0, description="Synthesized rows (0 = no synthesis)")
    judge: bool | None = Field(
        default=None, description="LLM judge in the filter; None = only with a configured endpoint (not the tiny embedded model)"
    )
    expand: dict[str, Any] = Field(
        default_factory=lambda: {"hops": 2, "fanout": 2, "relations_per_seed": 2, "max_new": 60},
        description="`[expand]` values for the run's expansion (a first run should take a minute or two); hops 0 = none",
    )
    executor: Literal["local", "ray"] = Field(
        default="local",
        description="Where the LLM stages (extract, expand, the filter's judge, synthesize) and dedup's MinHash pairs run: this process, or "
                    "shards on Ray workers (pip install 'personagraph[ray]'; docs/scale.md)",
    )
    workers: int = Field(default=2, ge=1, description="Ray executor: shards, one Ray task each")
    ray_address: str | None = Field(
        default=None, description="Ray executor: a cluster to join ('auto', 'ray://head:10001'); unset = a local Ray"
    )

    @field_validator("expand")
    @classmethod
    def _expand_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = set(value) - set(ExpandConfig.model_fields)
        if unknown:
            raise ValueError(f"not [expand] settings: {', '.join(sorted(unknown))}")
        return value


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
    llm: LLMConfig = Field(default_factory=LLMConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    expand: ExpandConfig = Field(default_factory=ExpandConfig)
    synthesis: SynthesisConfig = Field(default_factory=SynthesisConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = _config_file.get() or os.environ.get("PERSONAGRAPH_CONFIG", CONFIG_FILE_NAME)
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
    """Read the settings once: TOML file (explicit path, `PERSONAGRAPH_CONFIG`, or ./personagraph.toml), env, then `overrides`."""
    if config_path is not None and not Path(config_path).exists():
        raise FileNotFoundError(f"config file {config_path} does not exist")
    token = _config_file.set(Path(config_path) if config_path is not None else None)
    try:
        return Settings(**overrides)
    finally:
        _config_file.reset(token)


Section = TypeVar("Section", bound=BaseModel)


def with_overrides(section: Section, **overrides: Any) -> Section:
    """A copy of a config section with the given values (None = keep the section's own), validated.

    What the API's keyword arguments and the CLI's flags go through, so a wrong value is refused
    with the field's name, as it would be in the TOML file.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - set(type(section).model_fields)
    if unknown:
        raise TypeError(f"unknown {type(section).__name__} settings: {', '.join(sorted(unknown))}")
    return type(section).model_validate(section.model_dump() | given)


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

[llm]
provider = "openai"           # or "ollama"
# base_url = "http://localhost:8000/v1"   # unset = embedded SmolLM2-135M (tiny, rough output)
# base_url = ["http://gpu1:8000/v1", "http://gpu2:8000/v1"]   # a fleet: calls balanced, a failing one sat out
model = "smollm2-135m-instruct"
temperature = 0.7
max_tokens = 512
timeout = 60                  # seconds one call may take (a whole generation); raise it for slow models
connect_timeout = 10          # seconds to open a connection
max_retries = 5               # on 429 / 5xx / timeouts / connection errors, exponential backoff with jitter
max_consecutive_failures = 5  # calls in a row refused, unresolvable or unanswered within `timeout`: endpoint out
endpoint_cooldown = 5         # seconds an endpoint that was taken out sits out (doubling, up to endpoint_cooldown_max)
concurrency = 16              # calls in flight
# requests_per_second = 10
structured_output = "function_calling"   # or "json_schema" (OpenAI, vLLM) or "json_mode"
validation_retries = 2
cache = true                  # on-disk response cache in data_dir/llm_cache
# cache_dir = "llm_cache"     # elsewhere

[extract]
stances = ["read"]            # any of "read", "write", "like": one persona per stance per text
format = "structured"         # or "plain" (description only)
lang = "auto"                 # prompt language: "en", "zh", or auto by script
min_chars = 40                # shorter texts are skipped
chunk_chars = 4000            # longer texts are split at paragraph breaks
max_chunks = 4

[dedup]
method = "both"               # "minhash", "embedding" or "both"
shingles = "chars"            # MinHash shingles of characters (any script, typo-tolerant) or "words"
shingle_size = 3              # characters (or words) per shingle (measured: docs/dedup.md)
num_perm = 128
minhash_threshold = 0.3       # "both": estimated Jaccard at which MinHash proposes a pair to confirm
trust_jaccard = 0.7           # "minhash" alone: estimated Jaccard of a duplicate
embedding_threshold = 0.9     # cosine (all-MiniLM-L6-v2) of an embedding pair
verify_cosine = 0.86          # "both": cosine that confirms a proposed pair
shape_cosine = 0.3            # "both": ... or this, if the words that differ are on one side or misspelt
link_cosine = 0.5             # every two members of a merged group reach this cosine (or shape_cosine, one-sided)
min_jaccard = 0.1             # "both": an embedding pair shares this much too (the model reads English only)
link_jaccard = 0.5            # every two members reach this Jaccard with method "minhash"
ann_min_size = 20000          # from this many personas, embedding neighbours come from an IVF index (approximate)
ann_nprobe = 16               # IVF lists searched per persona
embedding_backend = "auto"    # "onnx" (CPU, no torch), "torch" (sentence-transformers), auto: torch only with CUDA
embedding_precision = "fp32"  # onnx: "fp32" (sentence-transformers' vectors) or "int8" (faster, cosine >= 0.99 to fp32)

[filter]
min_words = 2                 # words that say something; Chinese/Japanese/Thai count characters per word
max_chars = 600
languages = []                # [] = any language; e.g. ["en", "zh"] keeps only Latin-script and Chinese text
max_source_overlap = 0.5      # an extracted description sharing this much of its phrasing with its text is a copy
max_copied_words = 12         # ... or taking this many words in a row from it
max_seed_overlap = 0.85       # a proposed description sharing this much with its seed is the seed restated
min_relevance = 0.2           # cosine to the seed persona
person_probe = true           # reject English text that reads as a thing, event or text retold, not a person
use_llm = true
min_scores = { relevance = 3, plausibility = 3, specificity = 3, readability = 3 }

[synthesis]
strategy = "uniform"          # uniform | stratified | ego | walk | community | cluster
size = 20                     # members per sample
# min_size = 1                # cluster: accept clusters this small (default: only size)
hops = 2                      # ego-network radius
stratify_by = "age_group"     # equal shares per value of this attribute
statuses = ["accepted"]
seed = 0                      # same seed + same graph = same samples and rows
lang = "en"                   # or "zh"
mode = "zero_shot"            # few_shot | persona_few_shot | neighbourhood_few_shot | no_persona
shots = 3
task_dirs = []                # folders with your own <task>.<lang>.md prompts
write_back = false            # store rows as (:Sample)-[:GENERATED_BY]->(:Persona)

[run]                         # `personagraph run`: the whole method with a first run's small budgets
output_dir = "out"
task = "math_problem"
count = 10                    # synthesized rows (0 = none)
# judge = true                # LLM judge in the filter (default: only with a configured endpoint)
expand = { hops = 2, fanout = 2, relations_per_seed = 2, max_new = 60 }   # [expand] values for the run (hops 0 = none)
executor = "local"            # or "ray": the LLM stages as shards on Ray workers (pip install 'personagraph[ray]')
workers = 2                   # ray: shards, one Ray task each
# ray_address = "auto"        # ray: join this cluster (unset = a local Ray on this machine)

[expand]
hops = 6                      # deepest hop (six degrees); --hops
fanout = 3                    # personas per seed and relation; --fanout
relations_per_seed = 3        # relations asked about per seed
relations = []                # [] = all: patient, caregiver, colleague, supplier, client, child, ...
free_relations = true         # accept a more specific relation the LLM names, if it is a valid name
lang = "en"                   # or "zh"
dedup = "index"               # proposals matching an existing persona (dedup index) link to it; "exact" = same text only
relevance_check = true        # inline filter: cheap checks plus embedding relevance to the seed
# [[expand.extra_relations]]  # add your own relation
# name = "landlord"
# edge_type = "LANDLORD_OF"     # default: NAME_OF
# direction = "to_seed"         # (landlord)-[:LANDLORD_OF]->(seed); "from_seed" reverses it
# description = "someone who rents a home to the persona"
# leads_to = { age_group = ["older_adult"] }
"""
