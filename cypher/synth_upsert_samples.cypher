// Batched, idempotent upsert of synthesized samples by id (a rerun of the same row changes nothing).
// The GENERATED_BY edge to the persona is added by GraphStore.add_edges.
UNWIND $rows AS r
MERGE (s:Sample {id: r.id})
ON CREATE SET s += r.props
