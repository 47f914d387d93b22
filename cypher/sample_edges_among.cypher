// Relationship edges inside each of many groups of personas at once: $groups is a list of id lists;
// `sample` is the index of the group an edge lies in (both ends in it).
UNWIND range(0, size($groups) - 1) AS g
UNWIND $groups[g] AS i
MATCH (a:Persona {id: i})-[e]->(b:Persona)
WHERE b.id IN $groups[g]
RETURN g AS sample, a.id AS source, b.id AS target, type(e) AS type, properties(e) AS props
