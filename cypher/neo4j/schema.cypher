// Constraints and indexes of a Neo4j 5 store: the properties of falkordb/schema.cypher, plus hop
// and expanded, which Neo4j finds through an index at every value (FalkorDB does not).
CREATE CONSTRAINT persona_id IF NOT EXISTS FOR (p:Persona) REQUIRE p.id IS UNIQUE;
CREATE CONSTRAINT source_id IF NOT EXISTS FOR (s:Source) REQUIRE s.id IS UNIQUE;
CREATE CONSTRAINT run_id IF NOT EXISTS FOR (r:Run) REQUIRE r.id IS UNIQUE;
CREATE CONSTRAINT sample_id IF NOT EXISTS FOR (s:Sample) REQUIRE s.id IS UNIQUE;
CREATE INDEX persona_status IF NOT EXISTS FOR (p:Persona) ON (p.status);
CREATE INDEX persona_hop IF NOT EXISTS FOR (p:Persona) ON (p.hop);
CREATE INDEX persona_origin IF NOT EXISTS FOR (p:Persona) ON (p.origin);
CREATE INDEX persona_expanded IF NOT EXISTS FOR (p:Persona) ON (p.expanded);
CREATE INDEX persona_pending IF NOT EXISTS FOR (p:Persona) ON (p.pending);
CREATE INDEX persona_merged_into IF NOT EXISTS FOR (p:Persona) ON (p.merged_into);
CREATE INDEX persona_age_group IF NOT EXISTS FOR (p:Persona) ON (p.age_group);
CREATE INDEX persona_domain IF NOT EXISTS FOR (p:Persona) ON (p.domain);
CREATE INDEX persona_visibility IF NOT EXISTS FOR (p:Persona) ON (p.visibility);
CREATE INDEX persona_language IF NOT EXISTS FOR (p:Persona) ON (p.language);
CREATE INDEX source_text_hash IF NOT EXISTS FOR (s:Source) ON (s.text_hash);
