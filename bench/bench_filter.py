"""Filter quality: how often the cheap checks reject real personas, and how often they stop weak-model non-personas.

Two labelled sets, both in `tests/fixtures/filter/` (see its README for where they come from):
- `real_personas.jsonl`: personas released with Persona Hub, in English, Chinese, Russian and Thai;
  every rejection is a false rejection.
- `weak_model_outputs.jsonl`: what a weak model (the embedded SmolLM2-135M) answered to the extract
  and expand prompts, each labelled `person` or with the kind of non-persona it is: `copy` (of its
  source text or seed), `template` (unfilled slots), `statement` (about the text or the task),
  `generic` (no particular person, or no person at all), `garbage`, `language` (not in the language
  asked for). Each row names its source text (`texts.jsonl`) or its seed, which the copy check reads.

For each kind: how many, the share rejected (recall), and of everything a kind's checks rejected, the
share that is that kind (precision); then the false rejection of real personas (per script) and the
acceptance of non-personas. `language` rows are scored with `--languages` (default en,zh: the
languages the prompts asked for), since by default the filter accepts any language.

    python -m bench.bench_filter [--real FILE] [--languages en,zh] [--show 5]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from personagraph.graph.model import REGION_ATTRIBUTES, canonical_attributes, persona_id
from personagraph.config import FilterConfig
from personagraph.filter import (
    FilterVerdict,
    cheap_check,
    cheap_checks,
    main_script,
    script_counts,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "filter"
EXAMPLES = ROOT / "docs" / "examples"
KINDS = ("copy", "template", "statement", "generic", "garbage", "language")
# The kind of non-persona each cheap check is meant to stop.
CHECK_KIND = {"source_copy": "copy", "template": "template", "statement": "statement", "generic": "generic",
              "too_short": "generic", "repetition": "garbage", "list": "garbage", "too_long": "garbage",
              "language": "language", "not_a_person": "generic"}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def source_texts() -> dict[str, str]:
    """The texts the weak model was asked about, by uri: the shipped corpus and the fixture's own."""
    return {row["uri"]: row["text"] for path in (EXAMPLES / "texts.jsonl", FIXTURES / "texts.jsonl") for row in read_jsonl(path)}


def weak_outputs(path: Path = FIXTURES / "weak_model_outputs.jsonl") -> tuple[list[dict[str, Any]], list[str]]:
    """The labelled weak-model answers, and for each the text it was made from (its source text or its seed)."""
    texts = source_texts()
    rows = read_jsonl(path)
    return rows, [texts[r["source"]] if "source" in r else r["seed"] for r in rows]


def score(rows: list[dict[str, Any]], checks: list[list[str]]) -> dict[str, dict[str, float]]:
    """Per kind: rows, share rejected (recall), and precision of the checks meant for that kind."""
    out: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        labelled = [c for r, c in zip(rows, checks) if r["label"] == kind]
        flagged = [r["label"] for r, c in zip(rows, checks) if any(CHECK_KIND.get(x) == kind for x in c)]
        out[kind] = {
            "n": len(labelled),
            "recall": sum(1 for c in labelled if c) / len(labelled) if labelled else float("nan"),
            "precision": flagged.count(kind) / len(flagged) if flagged else float("nan"),
            "flagged": len(flagged),
        }
    return out


def stage_checks(rows: list[dict[str, Any]], sources: list[str], config: FilterConfig) -> list[FilterVerdict]:
    """The cheap checks as each row's stage runs them: an extracted answer against its source text
    (`max_source_overlap`), a proposal against its seed (`max_seed_overlap`, `restates_seed`; relevance,
    which needs the embedding model, is left out)."""
    against_seed = config.model_copy(update={"max_source_overlap": config.max_seed_overlap})
    return [cheap_check(r["description"], source if r["stage"] == "expand" else None,
                        against_seed if r["stage"] == "expand" else config, source=source, relevance=False)
            for r, source in zip(rows, sources)]


def same_as_seed(rows: list[dict[str, Any]]) -> list[bool]:
    """For each proposal, whether expansion's dedup index (default settings) matches it to its own seed,
    which expansion rejects as "same as the seed"; False for extracted rows."""
    from personagraph.config import DedupConfig
    from personagraph.dedup.index import DedupIndex

    seeds = sorted({r["seed"] for r in rows if r["stage"] == "expand"})
    index = DedupIndex(DedupConfig())
    index.add([persona_id(s) for s in seeds], seeds)
    proposals = [i for i, r in enumerate(rows) if r["stage"] == "expand" and r["description"].strip()]
    matches = index.lookup_many([rows[i]["description"] for i in proposals])
    out = [False] * len(rows)
    for i, match in zip(proposals, matches):
        out[i] = match is not None and match.id == persona_id(rows[i]["seed"])
    return out


def accepted_non_personas(rows: list[dict[str, Any]], rejected: list[bool]) -> tuple[list[dict[str, Any]], int]:
    """The rows of every non-person kind but `language` (kept by default) that were not rejected, and
    how many such rows there are."""
    non = [(r, x) for r, x in zip(rows, rejected) if r["label"] not in ("person", "language")]
    return [r for r, x in non if not x], len(non)


def real_personas(path: Path) -> list[str]:
    """Persona texts of a JSONL file: its `persona` field (Persona Hub's `input persona` also works)."""
    rows = read_jsonl(path)
    field = next(k for k in ("persona", "input persona", "description", "text") if k in rows[0])
    return [row[field] for row in rows]


def report_real(real: list[str], verdicts: list[FilterVerdict], name: str, seconds: float, show: int) -> None:
    """False rejection of real personas, per script."""
    scripts = Counter(main_script(script_counts(p)) for p in real)
    rejected = Counter(main_script(script_counts(p)) for p, v in zip(real, verdicts) if not v.ok)
    total = sum(rejected.values())
    print(f"real personas ({name}): {len(real):,}, rejected {total} ({total / len(real):.2%}); "
          f"{seconds / len(real) * 1e6:.0f} us per persona")
    for script, n in scripts.most_common():
        print(f"  {script.lower():10} {n:5,}  rejected {rejected[script]} ({rejected[script] / n:.2%})")
    for persona, verdict in [(p, v) for p, v in zip(real, verdicts) if not v.ok][:show]:
        print(f"    rejected: {persona[:90]!r} {verdict.checks}")


def report_weak(weak: list[dict[str, Any]], checks: list[list[str]], real_checks: list[list[str]],
                same: list[bool] | None, show: int) -> None:
    """Per kind of non-persona: share rejected and precision; acceptance of non-personas overall."""
    # Real personas take part in precision: a check that rejects them is wrong there too.
    rows = weak + [{"label": "person"} for _ in real_checks]
    table = score(rows, checks + real_checks)
    labels = Counter(r["label"] for r in weak)
    print(f"\nweak-model outputs: {len(weak)} ({', '.join(f'{k} {v}' for k, v in labels.most_common())})")
    print(f"{'kind':10} {'n':>4} {'rejected':>9} {'precision':>10}")
    for kind in KINDS:
        s = table[kind]
        print(f"{kind:10} {s['n']:4.0f} {s['recall']:9.1%} {s['precision']:10.1%}  ({s['flagged']:.0f} flagged)")
    accepted, n = accepted_non_personas(weak, [bool(c) for c in checks])
    print(f"non-personas accepted by the filter (every kind but language): {len(accepted)} of {n} ({len(accepted) / n:.1%})")
    for origin in sorted({r["origin"] for r in weak}):
        mine = [r for r in weak if r["origin"] == origin]
        left, total = accepted_non_personas(mine, [bool(c) for r, c in zip(weak, checks) if r["origin"] == origin])
        print(f"  of the {origin} rows: {len(left)} of {total} ({len(left) / total:.1%})")
    if same is not None:
        staged, _ = accepted_non_personas(weak, [bool(c) or s for c, s in zip(checks, same)])
        print(f"  as the stages run (expansion also rejects a proposal its dedup index matches to its seed, "
              f"`[expand] dedup = \"index\"`): {len(staged)} of {n} ({len(staged) / n:.1%})")
    persons = [(r, c) for r, c in zip(weak, checks) if r["label"] == "person"]
    print(f"weak-model answers labelled `person` rejected: {sum(1 for _, c in persons if c)} of {len(persons)}"
          + (f" (matched to their seed by dedup: {sum(1 for r, s in zip(weak, same) if s and r['label'] == 'person')})"
             if same is not None else ""))
    all_rejected = [r["label"] for r, c in zip(rows, checks + real_checks) if c]
    print(f"precision of rejection over both sets: {sum(1 for x in all_rejected if x != 'person') / len(all_rejected):.1%}")
    for row in accepted[:show]:
        print(f"    accepted {row['label']}: {row['description'][:90]!r}")
    for row, c in [(r, c) for r, c in persons if c][:show]:
        print(f"    rejected person: {row['description'][:90]!r} {c}")


def main() -> None:
    """Run the filter's cheap checks on both labelled sets and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, default=FIXTURES / "real_personas.jsonl", help="real personas (JSONL)")
    parser.add_argument("--weak", type=Path, default=FIXTURES / "weak_model_outputs.jsonl")
    parser.add_argument("--languages", default="en,zh", help="accepted languages when scoring `language` rows")
    parser.add_argument("--show", type=int, default=5, help="examples of each mistake to print")
    parser.add_argument("--no-dedup", dest="dedup", action="store_false",
                        help="skip the figure with expansion's dedup index (it loads the embedding model)")
    args = parser.parse_args()
    config = FilterConfig()

    real = real_personas(args.real)
    started = time.perf_counter()
    real_verdicts = cheap_checks(real, config=config)
    report_real(real, real_verdicts, args.real.name, time.perf_counter() - started, args.show)

    weak, sources = weak_outputs(args.weak)
    as_run = stage_checks(weak, sources, config)
    restricted = stage_checks(weak, sources, FilterConfig(languages=args.languages.split(",")))
    checks = [lang.checks if r["label"] == "language" else v.checks for r, v, lang in zip(weak, as_run, restricted)]
    report_weak(weak, checks, [v.checks for v in real_verdicts], same_as_seed(weak) if args.dedup else None, args.show)
    report_attributes(weak, args.show)


def report_attributes(rows: list[dict[str, Any]], show: int) -> None:
    """How many of the weak model's attribute values fit the region vocabulary, per attribute."""
    given: Counter[str] = Counter()
    kept: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for row in rows:
        attrs = row.get("attributes") or {}
        canonical, dropped = canonical_attributes(attrs)
        given.update(k for k in REGION_ATTRIBUTES if k in attrs)
        kept.update(canonical.keys())
        for key, value in dropped.items():
            examples.setdefault(key, []).append(value)
    print("\nattribute values of the weak model's structured answers: kept / given (dropped examples)")
    for key in REGION_ATTRIBUTES:
        shown = "; ".join(repr(v[:40]) for v in examples.get(key, [])[:show])
        print(f"  {key:11} {kept[key]:3} / {given[key]:3}  ({shown})")


if __name__ == "__main__":
    main()
