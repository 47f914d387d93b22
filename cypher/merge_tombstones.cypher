// Turn merged duplicates into tombstones: edges gone (already moved), status merged, pointer kept,
// so re-importing a duplicate's text does not bring it back as a live persona.
UNWIND $rows AS r
MATCH (d:Persona {id: r.id})
OPTIONAL MATCH (d)-[e]-()
DELETE e
WITH DISTINCT d, r
SET d.status = 'merged', d.merged_into = r.survivor
