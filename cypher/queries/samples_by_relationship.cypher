// Which relationships produced the synthesized data: written-back samples of relationship tasks per edge type and task.
// A sample counts for a type when two personas it was GENERATED_BY are joined by an edge of a type it used
// (`edge_types`): the edge of a dialogue, the relationships among a cast. Written back with --write-back.
MATCH (s:Sample)-[:GENERATED_BY]->(a:Persona)-[e]->(b:Persona)<-[:GENERATED_BY]-(s)
WHERE type(e) IN s.edge_types
RETURN type(e) AS relationship, s.task AS task, count(DISTINCT s) AS samples
ORDER BY samples DESC, relationship, task
