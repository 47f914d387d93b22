// Relationship types and how often each occurs between personas.
MATCH (:Persona)-[e]->(:Persona)
RETURN type(e) AS type, count(e) AS edges
ORDER BY edges DESC
