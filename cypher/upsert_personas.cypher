// Batched, idempotent persona upsert: an existing id is left as it is (re-importing changes nothing).
// Rows are lists in graph.model.PERSONA_ROW order:
// [id, description, status, hop, origin, run_id, created_at, attrs] (cheaper to send and read than maps).
UNWIND $rows AS r
MERGE (p:Persona {id: r[0]})
ON CREATE SET p.description = r[1], p.status = r[2], p.hop = r[3],
              p.origin = r[4], p.run_id = r[5], p.created_at = r[6],
              p.expanded = false, p += r[7]
