MATCH (n) RETURN DISTINCT labels(n)[0] AS label
