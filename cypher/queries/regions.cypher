// Live personas per age group and domain (the regions coverage counts by).
MATCH (p:Persona)
WHERE p.status IN ['candidate', 'accepted']
RETURN coalesce(p.age_group, 'unknown') AS age_group, coalesce(p.domain, 'unknown') AS domain, count(p) AS personas
ORDER BY personas DESC
