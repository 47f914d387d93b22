// Highest internal node id: paging (FalkorDB seeks ids directly) and uniform sampling draw ids below it.
// Shared: Neo4j 5 still answers id().
MATCH (n) RETURN max(id(n)) AS max_id
