// Relationship edges of many personas, either direction, to another persona with a status in $statuses,
// each with its direction as stored (source, type, target): the edges an edge task may pick from.
// `WITH a` pins the plan to an id lookup per row, as in neighbours.cypher.
UNWIND $ids AS i
MATCH (a:Persona {id: i})
WITH a
MATCH (a)-[e]-(b:Persona)
WHERE b.status IN $statuses AND b.id <> a.id
RETURN a.id AS anchor, startNode(e).id AS source, type(e) AS type, endNode(e).id AS target
