// Delete up to $limit rejected personas with their edges (`personagraph filter --purge`).
MATCH (p:Persona {status: 'rejected'})
WITH p LIMIT $limit
DETACH DELETE p
RETURN count(*) AS deleted
