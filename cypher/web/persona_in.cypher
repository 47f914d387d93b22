// Relationships to persona $id from other personas (other -[type]-> this), for its page; at most $limit.
// `WITH p` pins the plan to the id lookup.
MATCH (p:Persona {id: $id})
WITH p
MATCH (o:Persona)-[e]->(p)
RETURN type(e) AS type, o.id AS id, o.description AS description, o.status AS status
ORDER BY type, id
LIMIT $limit
