// Batched, idempotent edge upsert: at most one <<TYPE>> edge per ordered pair of nodes.
// <<TYPE>>, <<SRC>>, <<DST>> are validated by graph.model before they are filled in.
UNWIND $rows AS r
MATCH (a:<<SRC>> {id: r.src})
MATCH (b:<<DST>> {id: r.dst})
MERGE (a)-[e:<<TYPE>>]->(b)
ON CREATE SET e += r.props
RETURN count(e) AS matched
