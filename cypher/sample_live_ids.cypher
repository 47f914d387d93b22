// Ids of the personas that may be sampled (status in $statuses); callers sort them for reproducibility.
MATCH (p:Persona)
WHERE p.status IN $statuses
RETURN p.id AS id
