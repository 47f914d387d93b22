// Which of these ids are merged tombstones, and which survivor they were merged into.
UNWIND $ids AS i
MATCH (p:Persona {id: i})
WHERE p.status = 'merged'
RETURN p.id AS id, p.merged_into AS survivor
