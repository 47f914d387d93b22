// Older tombstones that pointed at a node now merged follow it to the new survivor.
UNWIND $rows AS r
MATCH (m:Persona {merged_into: r.id})
SET m.merged_into = r.survivor
