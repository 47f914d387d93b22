// How persona $id was reached: the chain of seeds back to its root (each expanded persona records the
// seed it was proposed from, `expanded_from`, and the relation and edge type, `via_relation` /
// `via_edge`), and the source texts the root was extracted from. Index lookups only, so it stays fast
// on a large, densely cross-linked graph. Run: personagraph query expansion_path -p id=p_...
MATCH (p0:Persona {id: $id})
OPTIONAL MATCH (p1:Persona {id: p0.expanded_from})
WITH p0, p1
OPTIONAL MATCH (p2:Persona {id: p1.expanded_from})
WITH p0, p1, p2
OPTIONAL MATCH (p3:Persona {id: p2.expanded_from})
WITH p0, p1, p2, p3
OPTIONAL MATCH (p4:Persona {id: p3.expanded_from})
WITH p0, p1, p2, p3, p4
OPTIONAL MATCH (p5:Persona {id: p4.expanded_from})
WITH p0, p1, p2, p3, p4, p5
OPTIONAL MATCH (p6:Persona {id: p5.expanded_from})
WITH [n IN [p6, p5, p4, p3, p2, p1, p0] WHERE n IS NOT NULL] AS chain
WITH chain, chain[0] AS root
OPTIONAL MATCH (root)-[x:EXTRACTED_FROM]->(s:Source)
RETURN [n IN chain | n {.id, .description, .hop}] AS personas,
       [n IN chain[1..] | {relation: n.via_relation, type: n.via_edge, hop: n.hop, run_id: n.run_id}] AS steps,
       collect(s {.id, .uri, stance: x.stance}) AS sources
