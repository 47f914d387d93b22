"""The relation vocabulary: edge types and directions, user relations, free-form names normalised or rejected."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from personagraph.graph.model import check_rel_type
from personagraph.config import ExpandConfig
from personagraph.relations import (
    RelationError,
    RelationSpec,
    RelationVocabulary,
    normalise_relation,
    parse_focus,
)


@pytest.fixture
def vocab() -> RelationVocabulary:
    return RelationVocabulary.default()


def test_default_vocabulary_covers_the_papers_relations_with_valid_edge_types(vocab: RelationVocabulary) -> None:
    for name in ("patient", "colleague", "supplier", "client", "parent", "child", "mentor", "student",
                 "neighbour", "employer", "employee", "competitor"):
        rel = vocab[name]
        assert check_rel_type(rel.edge_type) == rel.edge_type
        assert rel.description


def test_direction_decides_which_end_is_the_seed(vocab: RelationVocabulary) -> None:
    # the patient points at the nurse who treats them; the parent (seed) points at the proposed child
    assert vocab["patient"].endpoints("nurse", "patient") == ("patient", "nurse")
    assert vocab["child"].endpoints("parent", "kid") == ("parent", "kid")
    assert vocab["child"].edge_type == vocab["parent"].edge_type == "PARENT_OF"


def test_aliases_map_onto_their_relation_in_any_case_and_language(vocab: RelationVocabulary) -> None:
    assert normalise_relation("Co-Worker", vocab).name == "colleague"
    assert normalise_relation("  the Customer ", vocab).name == "client"
    assert normalise_relation("患者", vocab).name == "patient"
    assert normalise_relation("PATIENT_OF", vocab).name == "patient"


def test_a_new_free_form_relation_becomes_an_upper_snake_edge_type(vocab: RelationVocabulary) -> None:
    rel = normalise_relation("a night-shift colleague of", vocab)
    assert (rel.name, rel.edge_type, rel.direction) == ("night_shift_colleague", "NIGHT_SHIFT_COLLEAGUE_OF", "to_seed")
    assert normalise_relation("Landlord", vocab).edge_type == "LANDLORD_OF"


@pytest.mark.parametrize(("name", "reason"), [
    ("", "empty"),
    ("   ", "empty"),
    ("related", "too vague"),
    ("knows", "too vague"),
    ("someone who once met them on a train", "too long"),
    ("x" * 60, "too long"),
    ("boss`]->(x) DETACH DELETE x //", "not allowed"),
    ("3rd cousin", "starts with a digit"),
    ("远房表亲", "must be English"),
    ("extracted from", "reserved"),
])
def test_invalid_relation_names_are_rejected_with_a_clear_reason(vocab: RelationVocabulary, name: str, reason: str) -> None:
    with pytest.raises(RelationError, match=reason):
        normalise_relation(name, vocab)


def test_unknown_relation_lookup_lists_the_known_ones(vocab: RelationVocabulary) -> None:
    with pytest.raises(RelationError, match="known relations: patient, caregiver"):
        vocab["accountant"]


def test_user_relations_from_config_extend_and_replace_defaults() -> None:
    cfg = ExpandConfig(extra_relations=[
        {"name": "landlord", "direction": "to_seed", "description": "rents a home to the persona",
         "leads_to": {"age_group": ["older_adult"]}},
        {"name": "patient", "edge_type": "TREATED_BY", "direction": "from_seed"},
    ])
    vocab = RelationVocabulary.default(spec.to_relation() for spec in cfg.extra_relations)
    assert vocab["landlord"].edge_type == "LANDLORD_OF"
    assert vocab["patient"].edge_type == "TREATED_BY"
    assert [r.name for r in vocab.leading_to({"age_group": ["older_adult"]})] == ["parent", "grandparent", "landlord"]


def test_invalid_user_relation_fails_at_config_load_naming_the_problem() -> None:
    with pytest.raises(ValidationError, match="invalid relationship type 'landlord-of'"):
        RelationSpec(name="landlord", edge_type="landlord-of")
    with pytest.raises(ValidationError, match="reserved"):
        RelationSpec(name="source", edge_type="EXTRACTED_FROM")


def test_focus_picks_relations_that_lead_to_the_region(vocab: RelationVocabulary) -> None:
    assert {r.name for r in vocab.leading_to({"age_group": ["child"]})} == {"patient", "child", "student", "pupil"}
    both = vocab.leading_to({"age_group": ["child"], "visibility": ["behind-the-scenes"]})
    assert both and all(r.reaches({"age_group": ["child"], "visibility": ["behind-the-scenes"]}) == 1 for r in both)
    assert len(vocab.leading_to({"language": ["sw"]})) == len(vocab)  # nothing leads there: all relations


def test_parse_focus_groups_values_and_rejects_malformed_pairs() -> None:
    assert parse_focus(["age_group=child", "visibility=behind-the-scenes", "age_group=teenager"]) == {
        "age_group": ["child", "teenager"], "visibility": ["behind-the-scenes"]}
    with pytest.raises(ValueError, match="expected ATTRIBUTE=VALUE"):
        parse_focus(["age_group"])
    with pytest.raises(ValueError, match="invalid property name"):
        parse_focus(["age group=child"])
