"""The same store operations against a Neo4j 5 server: run only when NEO4J_URI is set, skipped otherwise.

    NEO4J_URI=bolt://localhost:7687 NEO4J_PASSWORD=... pytest tests/test_neo4j.py

These tests DELETE EVERY NODE of the database they use (NEO4J_DATABASE, default the server's default
database) before and after each test: point them at a scratch server. The dialect-neutral tests of
the embedded store are imported here and run again with this module's `store` fixture, so both
backends are held to the same behaviour; Neo4j-specific checks follow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from personagraph.graph.model import Edge
from personagraph.graph.store import GraphStore, Neo4jStore, QueryError, ReadOnlyViolation, StoreConfig, open_store
from tests.graphs import personas
from tests.test_graph_store import (  # noqa: F401  (collected and run here against Neo4j)
    test_a_failing_batch_stops_the_batches_after_it,
    test_a_named_read_in_small_batches_answers_what_one_batch_does,
    test_duplicates_within_one_call_keep_the_first_occurrence,
    test_edges_to_sources_use_the_given_labels,
    test_extracted_from_edges_pool_every_stance_in_any_order,
    test_ids_are_content_hashes_and_attributes_become_properties,
    test_iter_nodes_pages_through_every_node,
    test_named_reads_return_plain_data_about_the_graph,
    test_purging_rejected_personas_in_small_batches_deletes_what_one_batch_deletes,
    test_read_only_queries_cannot_write_and_errors_are_the_databases,
    test_personas_with_different_attribute_keys_land_whole_in_one_call,
    test_reads_match_networkx,
    test_reimporting_the_same_personas_changes_nothing,
    test_schema_is_idempotent_and_enforces_unique_ids,
    test_set_properties_counts_matches_and_updates,
    test_sources_upsert_idempotently,
    test_stats_and_record_run_and_reset,
    test_typed_edges_are_merged_once_per_type_and_pair,
    test_upserting_samples_in_small_batches_writes_what_one_batch_writes,
    test_the_async_path_runs_the_same_queries_with_the_same_errors,
    test_values_survive_the_batched_write_path,
    test_write_together_does_what_the_three_writes_do_in_one_query,
    test_write_together_lands_whole_or_not_at_all,
    test_write_together_redirects_merged_endpoints_unless_told_the_ids_are_live,
)
from tests.test_merge import (  # noqa: F401
    test_edges_written_to_a_merged_persona_land_on_its_survivor,
    test_merge_moves_both_directions_and_records_the_duplicates,
    test_merge_refuses_a_survivor_that_is_also_a_duplicate_and_a_missing_survivor,
    test_merged_personas_pool_the_stances_that_extracted_them_from_one_source,
    test_merging_a_survivor_later_repoints_older_tombstones,
    test_merging_into_a_persona_merged_away_lands_on_its_survivor,
)
from tests.test_traversal import (  # noqa: F401
    graph,
    test_connected_clusters_are_connected_distinct_and_reproducible,
    test_ego_networks_match_networkx_shortest_paths,
    test_random_walks_step_along_edges_and_reproduce_with_the_same_seed,
    test_traversal_steps_only_onto_live_personas,
)
from tests.test_web_api import (  # noqa: F401  (the web app's API over Neo4j)
    served,
    test_a_cypher_error_is_400_with_the_database_message,
    test_a_hostile_description_comes_back_as_the_exact_string,
    test_a_merged_id_opens_its_survivor_and_an_unknown_one_is_404,
    test_a_query_past_the_timeout_is_stopped_with_408,
    test_a_write_is_refused_without_write_and_runs_with_it,
    test_cells_are_nodes_edges_and_paths_and_the_graph_gathers_them_once,
    test_coverage_gives_region_shares_and_the_graph_measures,
    test_ready_made_queries_are_listed_with_their_parameters_and_run_by_name,
    test_rows_past_the_cap_are_cut_off_and_said_so,
    test_runs_come_newest_first_with_counts_tokens_and_inputs,
    test_the_neighbourhood_grows_by_hop_nearest_first_up_to_the_limit,
    test_the_path_leads_from_the_persona_back_to_its_seed_and_source,
    test_the_persona_page_has_edges_both_ways_the_verdict_aliases_source_and_samples,
    world,
)

pytestmark = pytest.mark.neo4j


def neo4j_options() -> StoreConfig:
    """Options from the standard NEO4J_* variables; skips the test when NEO4J_URI is not set."""
    uri = os.environ.get("NEO4J_URI")
    if not uri:
        pytest.skip("NEO4J_URI is not set: no Neo4j server to test against")
    return StoreConfig(
        uri=uri,
        user=os.environ.get("NEO4J_USER", os.environ.get("NEO4J_USERNAME", "neo4j")),
        password=os.environ.get("NEO4J_PASSWORD", ""),
        graph=os.environ.get("NEO4J_DATABASE", "personas"),  # "personas" = the server's default database
        batch_size=500,
    )


@pytest.fixture
def store() -> Iterator[GraphStore]:
    """The Neo4j store with schema, emptied before and after the test."""
    st = open_store(neo4j_options())
    st.reset()
    yield st
    st.reset()
    st.close()


def test_open_store_picks_neo4j_for_bolt_and_neo4j_uris(store: GraphStore) -> None:
    assert isinstance(store, Neo4jStore) and store.dialect == "neo4j"
    assert store.run("RETURN 1 AS one").records() == [{"one": 1}]


def test_schema_creates_the_constraints_and_indexes(store: GraphStore) -> None:
    names = {r["name"] for r in store.run("SHOW CONSTRAINTS YIELD name RETURN name", write=False).records()}
    assert {"persona_id", "source_id", "run_id", "sample_id"} <= names
    indexes = {r["name"] for r in store.run("SHOW INDEXES YIELD name RETURN name", write=False).records()}
    assert {"persona_status", "persona_hop", "persona_merged_into"} <= indexes


def test_a_write_sent_read_only_is_refused_by_the_server(store: GraphStore) -> None:
    with pytest.raises(ReadOnlyViolation):
        store.run("CREATE (:Persona {id: 'p_ro'})", write=False)
    assert store.run("MATCH (n) RETURN count(n)").value() == 0


def test_neighbours_and_degrees(store: GraphStore) -> None:
    a, b, c = personas(3, prefix="neo4j nbrs")
    store.upsert_personas([a, b, c])
    store.add_edges([Edge(source=a.id, target=b.id, type="COLLEAGUE_OF"), Edge(source=c.id, target=a.id, type="PATIENT_OF"),
                     Edge(source=a.id, target=b.id, type="FRIEND_OF")])
    assert store.neighbours([a.id, b.id]) == {a.id: sorted([b.id, c.id]), b.id: [a.id]}
    assert store.degrees([a.id, b.id, c.id]) == {a.id: 3, b.id: 2, c.id: 1}


def test_a_constraint_violation_is_a_query_error(store: GraphStore) -> None:
    (a,) = personas(1, prefix="neo4j unique")
    store.upsert_personas([a])
    with pytest.raises(QueryError):
        store.run("CREATE (:Persona {id: $id})", {"id": a.id})


def test_the_python_api_opens_neo4j_by_uri_and_runs_stages_on_it(store: GraphStore, tmp_path, fake_llm) -> None:  # type: ignore[no-untyped-def]
    import json

    import personagraph as pg

    people = tmp_path / "people.jsonl"
    people.write_text("".join(json.dumps({"persona": d}) + "\n" for d in (
        "A ferry captain in Split who knows every island's tides by heart",
        "A school librarian in Tartu who runs a chess club on Friday afternoons")), encoding="utf-8")
    with pg.open(os.environ["NEO4J_URI"], graph=os.environ.get("NEO4J_DATABASE", ""), progress=False,
                 llm={"base_url": fake_llm.base_url, "model": "fake-model", "cache_dir": tmp_path / "cache"}) as g:
        assert g.import_personas(people).imported == 2
        assert g.filter(judge=False).accepted == 2
        assert g.query("MATCH (p:Persona) RETURN count(p) AS n") == [{"n": 2}]
        assert g.to_networkx().number_of_nodes() == 2
        made = g.synthesize("math_problem", tmp_path / "rows.jsonl", count=2)
        assert made.written == 2
        assert {r["stage"] for r in g.query("MATCH (r:Run) RETURN r.stage AS stage")} == {"import", "filter", "synthesize"}
