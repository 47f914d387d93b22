// Outgoing edges of the given nodes, with what the merge primitive needs to recreate them.
UNWIND $ids AS i
MATCH (d:Persona {id: i})-[e]->(o)
RETURN d.id AS node, type(e) AS type, properties(e) AS props, labels(o)[0] AS other_label, o.id AS other
