// How many nodes of a label hold, in each of $props, a value the engine's range index drops (0, 0.0,
// false, ''). `n[k]` reads the property without the index, so the count is the truth.
MATCH (n:<<LABEL>>)
UNWIND $props AS k
WITH k, n[k] AS v
WHERE v = 0 OR v = false OR v = ''
RETURN k AS property, count(*) AS nodes
