// Whether any persona has been merged away (add_edges skips its redirect lookup when none has).
MATCH (p:Persona)
WHERE p.status = 'merged'
RETURN p.id AS id
LIMIT 1
