// Indexes of the embedded FalkorDB store. Unique constraints (Persona.id, Source.id, Run.id,
// Sample.id) are created through FalkorDB's GRAPH.CONSTRAINT command, which needs these indexes.
// No index on a property that holds 0, 0.0, false or '' (hop, expanded): the engine drops those
// entries when it loads the graph from disk, so a lookup would miss them (graph/indexes.py).
CREATE INDEX FOR (p:Persona) ON (p.id);
CREATE INDEX FOR (p:Persona) ON (p.status);
CREATE INDEX FOR (p:Persona) ON (p.origin);
CREATE INDEX FOR (p:Persona) ON (p.pending);
CREATE INDEX FOR (p:Persona) ON (p.merged_into);
CREATE INDEX FOR (p:Persona) ON (p.age_group);
CREATE INDEX FOR (p:Persona) ON (p.domain);
CREATE INDEX FOR (p:Persona) ON (p.visibility);
CREATE INDEX FOR (p:Persona) ON (p.language);
CREATE INDEX FOR (s:Source) ON (s.id);
CREATE INDEX FOR (s:Source) ON (s.text_hash);
CREATE INDEX FOR (r:Run) ON (r.id);
CREATE INDEX FOR (s:Sample) ON (s.id);
