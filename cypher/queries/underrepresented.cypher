// The thinnest regions: live personas per (age_group, domain, visibility), fewest first.
MATCH (p:Persona)
WHERE p.status IN ['candidate', 'accepted']
RETURN coalesce(p.age_group, 'unknown') AS age_group, coalesce(p.domain, 'unknown') AS domain,
       coalesce(p.visibility, 'unknown') AS visibility, count(p) AS personas
ORDER BY personas ASC, age_group, domain, visibility
LIMIT 25
