"""Coverage targets: the share of live personas wanted per region value, and how far the graph is from it.

A targets file has one TOML table per region attribute (`graph.model.REGION_ATTRIBUTES`), values as
the region vocabulary names them:

    [age_group]
    child = 0.10
    older_adult = 0.15

    [visibility]
    behind-the-scenes = 0.40

`expand --target` aims each round at the values furthest below their share (the `focus` of that
round), `coverage --target` shows target, actual and gap per value, and `sample --weights` draws
stratified samples to these shares.

    >>> targets = load_targets(Path("targets.toml"))
    >>> [(g.value, g.gap) for g in target_gaps(store, targets)]
    [('child', 0.06), ('older_adult', 0.11), ('behind-the-scenes', -0.02)]
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, RootModel, ValidationError, model_validator

from personagraph.graph.model import REGION_ATTRIBUTES, REGION_VOCABULARY, canonical_region_value

if TYPE_CHECKING:
    from personagraph.graph.store import GraphStore


class CoverageTargets(RootModel[dict[str, dict[str, float]]]):
    """{attribute: {value: share}}, checked against the region vocabulary: known attributes, values that
    are canonical (as `coverage` names them), shares in (0, 1], at most 1 per attribute."""

    @model_validator(mode="after")
    def _check(self) -> CoverageTargets:
        for attribute, shares in self.root.items():
            if attribute not in REGION_ATTRIBUTES:
                raise ValueError(f"unknown attribute {attribute!r}: targets are set on {', '.join(REGION_ATTRIBUTES)}")
            for value, share in shares.items():
                if canonical_region_value(attribute, value) != value:
                    known = REGION_VOCABULARY.get(attribute)
                    hint = (f"one of {', '.join(known)}" if known else
                            "an ISO 639-1 code such as en" if attribute == "language" else "lower case, as `coverage` shows it")
                    raise ValueError(f"unknown value {value!r} of {attribute}: use {hint}")
                if not 0 < share <= 1:
                    raise ValueError(f"{attribute}.{value} = {share}: a share is a fraction in (0, 1], e.g. 0.1 for 10%")
            if sum(shares.values()) > 1 + 1e-9:
                raise ValueError(f"the {attribute} shares add up to {sum(shares.values()):.2f}: at most 1")
        return self

    def items(self) -> list[tuple[str, str, float]]:
        """(attribute, value, share) for every target, in file order."""
        return [(a, v, s) for a, shares in self.root.items() for v, s in shares.items()]


def parse_targets(data: Mapping[str, Any] | CoverageTargets, where: str = "targets") -> CoverageTargets:
    """Targets from a mapping (or as given), any problem as one ValueError line naming it."""
    if isinstance(data, CoverageTargets):
        return data
    try:
        return CoverageTargets.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        place = ".".join(str(p) for p in first["loc"] if p != "__root__")
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ValueError(f"{where}: {message}" + (f" (at {place})" if place and first["type"] != "value_error" else "")) from None


def load_targets(source: str | Path | Mapping[str, Any] | CoverageTargets) -> CoverageTargets:
    """Targets from a TOML file (one table per attribute), a mapping, or targets already made."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML ({exc})") from None
        return parse_targets(data, str(path))
    return parse_targets(source)


# A config field holding targets: given a file path or a mapping, it keeps the checked {attribute: {value: share}}.
TargetShares = Annotated[dict[str, dict[str, float]], BeforeValidator(lambda v: {} if v is None else load_targets(v).root)]


class TargetGap(BaseModel):
    """One targeted value: the share wanted, the share now, and the gap (target - actual; positive = short)."""

    attribute: str
    value: str
    target: float
    actual: float
    personas: int

    @property
    def gap(self) -> float:
        """How far the share is below its target (negative when above)."""
        return round(self.target - self.actual, 6)


def target_gaps(store: GraphStore, targets: CoverageTargets) -> list[TargetGap]:
    """Target, actual share of live personas and gap per targeted value (one count query per attribute)."""
    out: list[TargetGap] = []
    for attribute, shares in targets.root.items():
        every = store.region_counts(attribute)  # None counts too: a share is of all live personas
        counts = {str(v): n for v, n in every.items() if v is not None}
        total = sum(every.values())
        for value, share in shares.items():
            n = counts.get(value, 0)
            out.append(TargetGap(attribute=attribute, value=value, target=share, actual=n / total if total else 0.0, personas=n))
    return out


def targets_met(gaps: list[TargetGap], tolerance: float) -> bool:
    """Every targeted value is within `tolerance` of its share, or above it.

    Expansion only adds personas, so a share above its target comes down only as the others grow;
    a share short of its target is what a round can aim at.
    """
    return all(g.gap <= tolerance for g in gaps)


def focus_from_gaps(gaps: list[TargetGap], tolerance: float, values: int = 2) -> dict[str, list[str]]:
    """The next round's focus: the `values` targeted values furthest below target (by more than `tolerance`)."""
    short = sorted((g for g in gaps if g.gap > tolerance), key=lambda g: (-g.gap, g.attribute, g.value))[:values]
    focus: dict[str, list[str]] = {}
    for g in short:
        focus.setdefault(g.attribute, []).append(g.value)
    return focus
