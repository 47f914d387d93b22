// Batched, idempotent persona upsert: an existing id is left as it is (re-importing changes nothing).
UNWIND $rows AS r
MERGE (p:Persona {id: r.id})
ON CREATE SET p.description = r.description, p.status = r.status, p.hop = r.hop,
              p.origin = r.origin, p.run_id = r.run_id, p.created_at = r.created_at,
              p.expanded = false, p += r.attrs
