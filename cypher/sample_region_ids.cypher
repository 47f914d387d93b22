// Sampleable personas with their value of attribute <<PROP>> (a "region"); personas without it are left out.
MATCH (p:Persona)
WHERE p.status IN $statuses AND p.<<PROP>> IS NOT NULL
RETURN p.<<PROP>> AS value, p.id AS id
