// Batched, idempotent EXTRACTED_FROM upsert (graph.store uses it for that edge type): one edge per
// (persona, source) pair, as upsert_edges, but recording every stance that yielded the persona.
// `stances` is the sorted union of the edge's stances and the row's, so a rerun adds nothing twice
// and the order in which answers arrived does not matter; `stance` is the same list joined with
// commas ("read", "like,read"), kept for queries written before `stances`. An edge written before
// `stances` existed counts its single `stance`, and so does a row that carries only `stance`.
// Plain Cypher (FalkorDB has no APOC): the union keeps what the edge had and adds what is new; the
// sort puts each stance at its rank, the number of stances below it (stances are distinct).
// <<TYPE>>, <<SRC>>, <<DST>> are validated by graph.model before they are filled in.
UNWIND $rows AS r
MATCH (a:<<SRC>> {id: r[0]})
WITH r, a
MATCH (b:<<DST>> {id: r[1]})
MERGE (a)-[e:<<TYPE>>]->(b)
ON CREATE SET e += r[2]
WITH e, [x IN coalesce(e.stances, [e.stance]) WHERE x IS NOT NULL] AS had,
     [x IN coalesce(r[2].stances, [r[2].stance]) WHERE x IS NOT NULL] AS given
WITH e, had + [x IN given WHERE NOT x IN had] AS merged
WITH e, [i IN range(0, size(merged) - 1) | head([x IN merged WHERE size([y IN merged WHERE y < x]) = i])] AS stances
SET e.stances = CASE WHEN size(stances) = 0 THEN null ELSE stances END,
    e.stance = reduce(joined = head(stances), x IN tail(stances) | joined + ',' + x)
RETURN count(e) AS matched
