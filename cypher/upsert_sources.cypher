// Batched, idempotent source upsert.
UNWIND $rows AS r
MERGE (s:Source {id: r.id})
ON CREATE SET s.uri = r.uri, s.text_hash = r.text_hash, s += r.props
