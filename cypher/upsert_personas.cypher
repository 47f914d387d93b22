// Batched, idempotent persona upsert: an existing id is left as it is (re-importing changes nothing).
// Rows are lists: [id, description, status, hop, origin, run_id, created_at, attribute values...]
// (graph.model.PERSONA_ROW), one batch per set of attribute keys, which <<ATTRS>> names
// (", `key`: r[7], ..."; keys validated). Every property is in the CREATE pattern: on FalkorDB,
// setting properties on a node after creating it re-indexes the node, about twice the cost.
// `pending: 'h<hop>'` marks a persona not yet expanded (the frontier's index key, graph/indexes.py).
UNWIND $rows AS r
OPTIONAL MATCH (existing:Persona {id: r[0]})
WITH r WHERE existing IS NULL
CREATE (:Persona {id: r[0], description: r[1], status: r[2], hop: r[3], origin: r[4], run_id: r[5],
                  created_at: r[6], expanded: false,
                  pending: 'h' + toString(r[3])<<ATTRS>>})
