// Relationships from persona $id to other personas (this -[type]-> other), for its page; at most $limit.
// `WITH p` pins the plan to the id lookup.
MATCH (p:Persona {id: $id})
WITH p
MATCH (p)-[e]->(o:Persona)
RETURN type(e) AS type, o.id AS id, o.description AS description, o.status AS status
ORDER BY type, id
LIMIT $limit
