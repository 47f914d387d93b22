// The `id` property of nodes given by the database's own ids (relationship ends in a console result
// whose nodes were not returned). FalkorDB seeks each internal id directly.
UNWIND $keys AS k
MATCH (n)
WHERE id(n) = k
RETURN k AS key, n.id AS id
