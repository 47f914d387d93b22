// The 20 personas with the most relationship edges.
MATCH (p:Persona)-[e]-(:Persona)
RETURN p.id AS id, p.description AS description, count(e) AS degree
ORDER BY degree DESC, id
LIMIT 20
