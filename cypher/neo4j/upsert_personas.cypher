// Batched, idempotent persona upsert (see cypher/upsert_personas.cypher for the row layout and
// <<ATTRS>>). MERGE on Neo4j: two concurrent writers of one new id then merge instead of one of
// them failing on the uniqueness constraint.
UNWIND $rows AS r
MERGE (p:Persona {id: r[0]})
ON CREATE SET p += {description: r[1], status: r[2], hop: r[3], origin: r[4], run_id: r[5],
                    created_at: r[6], expanded: false,
                    pending: 'h' + toString(r[3])<<ATTRS>>}
