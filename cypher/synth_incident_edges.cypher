// Relationship edges of many personas, either direction, to another persona with a status in $statuses,
// each with its direction as stored: the edges an edge task may pick from. One row per anchor, each
// edge packed as "source target TYPE" (ids and types hold no spaces), as in sample_edges_among.cypher:
// the client parses one string far faster than a row of values. `WITH a` pins the plan to an id
// lookup per row, as in neighbours.cypher.
UNWIND $ids AS i
MATCH (a:Persona {id: i})
WITH a
MATCH (a)-[e]-(b:Persona)
WHERE b.status IN $statuses AND b.id <> a.id
RETURN a.id AS anchor, collect(startNode(e).id + ' ' + endNode(e).id + ' ' + type(e)) AS edges
