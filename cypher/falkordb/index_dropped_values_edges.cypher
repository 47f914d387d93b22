// How many edges of a type hold, in each of $props, a value the engine's range index drops (0, 0.0,
// false, ''). `r[k]` reads the property without the index, so the count is the truth.
MATCH ()-[r:<<LABEL>>]->()
UNWIND $props AS k
WITH k, r[k] AS v
WHERE v = 0 OR v = false OR v = ''
RETURN k AS property, count(*) AS nodes
