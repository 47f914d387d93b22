// Node counts by label and persona status.
MATCH (n)
RETURN labels(n)[0] AS label, n.status AS status, count(n) AS nodes
ORDER BY label, status
