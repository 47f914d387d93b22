// Highest internal id of a persona node: uniform draws stay below it, so nodes of other labels
// written later (Run, Sample) do not change a seeded draw.
MATCH (p:Persona) RETURN max(id(p)) AS max_id
