// Relationship degree (persona-persona edges, both directions) of the given personas.
UNWIND $ids AS i
MATCH (p:Persona {id: i})
OPTIONAL MATCH (p)-[e]-(:Persona)
RETURN p.id AS id, count(e) AS degree
