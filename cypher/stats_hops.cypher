// Live personas per hop.
MATCH (p:Persona)
WHERE p.status IN $statuses
RETURN p.hop AS hop, count(p) AS personas
ORDER BY hop
