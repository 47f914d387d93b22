// Delete everything (tests and `personagraph init --reset`).
MATCH (n) DETACH DELETE n
