// What the dedup index was built from: if any of these changed, the index is stale and resyncs.
// total counts purges, live counts merges and status changes, newest counts inserts.
MATCH (p:Persona)
RETURN count(p) AS total,
       sum(CASE WHEN p.status IN $statuses THEN 1 ELSE 0 END) AS live,
       max(p.created_at) AS newest
