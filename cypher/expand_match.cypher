// Exact dedup-on-insert for expansion: which of these persona ids exist, and where a merged one now
// lives (its survivor). Returns ids only, not whole nodes: this runs once per chunk of proposals.
UNWIND $ids AS i
MATCH (p:Persona {id: i})
RETURN p.id AS id, coalesce(p.merged_into, p.id) AS target
