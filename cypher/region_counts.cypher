// Personas per value of attribute <<PROP>> (a "region"), live statuses only.
MATCH (p:Persona)
WHERE p.status IN $statuses
RETURN p.<<PROP>> AS value, count(p) AS personas
ORDER BY personas DESC
