// Batched, idempotent edge upsert: at most one <<TYPE>> edge per ordered pair of nodes.
// <<TYPE>>, <<SRC>>, <<DST>> are validated by graph.model before they are filled in.
// Rows are lists [source id, target id, props] (cheaper to send and read than maps).
// `WITH r, a` chains the two id lookups (FalkorDB otherwise plans a Cartesian product per row; ~4% slower).
UNWIND $rows AS r
MATCH (a:<<SRC>> {id: r[0]})
WITH r, a
MATCH (b:<<DST>> {id: r[1]})
MERGE (a)-[e:<<TYPE>>]->(b)
ON CREATE SET e += r[2]
RETURN count(e) AS matched
