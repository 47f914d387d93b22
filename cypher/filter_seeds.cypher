// For each persona id, the neighbour it was most likely proposed from (lowest hop below its own) and
// the relation on that edge: the seed the filter judges relevance against.
UNWIND $ids AS id
MATCH (p:Persona {id: id})
OPTIONAL MATCH (p)-[r]-(s:Persona)
WHERE s.hop < p.hop
WITH p, r, s ORDER BY s.hop
WITH p, collect({seed: s.description, relation: coalesce(r.relation, type(r))}) AS found
RETURN p.id AS id, found[0].seed AS seed, found[0].relation AS relation
