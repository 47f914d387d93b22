// One page of <<LABEL>> nodes by internal id range (FalkorDB seeks ids directly).
MATCH (n:<<LABEL>>)
WHERE id(n) >= $after AND id(n) < $after + $limit
RETURN id(n) AS cursor, n
