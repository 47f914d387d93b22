// Record on each survivor the descriptions and ids merged into it (lists computed by the caller).
UNWIND $rows AS r
MATCH (s:Persona {id: r.id})
SET s.aliases = r.aliases, s.merged_ids = r.merged_ids
