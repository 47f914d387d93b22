// Relationship edges inside each of many groups of personas at once: $groups is a list of id lists.
// One row per group, each edge packed as "source target TYPE" (ids and types hold no spaces):
// the client parses a string far faster than a row of values, and edges are most of the payload.
UNWIND range(0, size($groups) - 1) AS g
UNWIND $groups[g] AS i
MATCH (a:Persona {id: i})-[e]->(b:Persona)
WHERE b.id IN $groups[g]
RETURN g AS sample, collect(a.id + ' ' + b.id + ' ' + type(e)) AS edges
