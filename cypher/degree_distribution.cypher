// How many personas have each relationship degree.
MATCH (p:Persona)
WHERE p.status IN $statuses
OPTIONAL MATCH (p)-[e]-(:Persona)
WITH p, count(e) AS degree
RETURN degree, count(p) AS personas
ORDER BY degree
