// Relationship edges whose two ends are both in $ids.
UNWIND $ids AS i
MATCH (a:Persona {id: i})-[e]->(b:Persona)
WHERE b.id IN $ids
RETURN a.id AS source, b.id AS target, type(e) AS type, properties(e) AS props
