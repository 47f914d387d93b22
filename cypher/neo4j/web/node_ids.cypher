// The `id` property of nodes given by the database's own ids (relationship ends in a console result
// whose nodes were not returned).
UNWIND $keys AS k
MATCH (n)
WHERE elementId(n) = k
RETURN k AS key, n.id AS id
