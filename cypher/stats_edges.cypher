// Edge counts by type.
MATCH ()-[e]->()
RETURN type(e) AS type, count(e) AS edges
ORDER BY edges DESC
