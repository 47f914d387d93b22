// One page of <<LABEL>> nodes in id order (the uniqueness constraint's index serves the order).
MATCH (n:<<LABEL>>)
WHERE n.id > $after
RETURN n.id AS cursor, n
ORDER BY n.id
LIMIT $limit
