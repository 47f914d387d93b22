// Highest internal node id (Neo4j 5 still answers id(); sampling draws random ids below it).
MATCH (n) RETURN max(id(n)) AS max_id
