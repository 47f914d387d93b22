// Sample members as one list per persona: [id, description, <<ATTRS>>...], where <<ATTRS>> is
// ", p.key" for each attribute key, each checked by graph.model.check_property before it is filled
// in. The client parses such a list about 1.5x faster than a node (which also carries bookkeeping:
// status, run_id, created_at, ...), and member fetches are a third of a sampling batch.
UNWIND $ids AS i
MATCH (p:Persona {id: i})
RETURN [p.id, p.description<<ATTRS>>] AS row
