// The source texts persona $id was extracted from, with the stances that gave it. Extraction stores a
// source's uri, hash and size, not its text; `text` is there for sources someone stored it on.
MATCH (p:Persona {id: $id})
WITH p
MATCH (p)-[x:EXTRACTED_FROM]->(s:Source)
RETURN s.id AS id, s.uri AS uri, s.text AS text, s.chars AS chars, x.stance AS stance
ORDER BY id
LIMIT $limit
