// Personas within 2 relationship hops of a seed ($id), with their distance. Usage: --param id=p_...
MATCH path = (s:Persona {id: $id})-[*1..2]-(n:Persona)
WHERE n.id <> s.id AND n.status IN ['candidate', 'accepted']
RETURN n.id AS id, n.description AS description, min(length(path)) AS distance
ORDER BY distance, id
