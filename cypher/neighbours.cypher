// Persona neighbours (either direction, any relationship type) of many nodes in one query.
UNWIND $ids AS i
MATCH (a:Persona {id: i})-[]-(b:Persona)
WHERE b.status IN $statuses
RETURN a.id AS id, collect(DISTINCT b.id) AS neighbours
