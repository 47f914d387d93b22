// Batched, idempotent upsert of synthesized samples by id (a rerun of the same row changes nothing).
// GraphStore.upsert_samples adds the GENERATED_BY edge to the persona after each batch (through add_edges).
UNWIND $rows AS r
MERGE (s:Sample {id: r.id})
ON CREATE SET s += r.props
