// Synthesized samples persona $id took part in (written back with --write-back: Sample -[:GENERATED_BY]-> persona).
// `WITH p` pins the plan to the id lookup, then the persona's own edges, instead of a scan of every Sample.
MATCH (p:Persona {id: $id})
WITH p
MATCH (s:Sample)-[:GENERATED_BY]->(p)
RETURN s.id AS id, s.task AS task, s.text AS text
ORDER BY id
LIMIT $limit
