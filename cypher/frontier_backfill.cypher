// Give every unexpanded persona its frontier key (`pending`, see upsert_personas.cypher): graphs
// written before the key existed (when ensure_schema creates its index), and personas a user's own
// write marked unexpanded again.
MATCH (p:Persona)
WHERE p.expanded = false AND p.pending IS NULL
SET p.pending = 'h' + toString(p.hop)
RETURN count(p) AS marked
