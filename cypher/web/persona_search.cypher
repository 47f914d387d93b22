// Personas whose id is $q or whose description contains it (any case), for the page's search box; at
// most $limit. A scan of the descriptions (there is no full-text index), stopped at the limit: the
// API runs it under the console's timeout.
MATCH (p:Persona)
WHERE p.status IN $statuses AND (p.id = $q OR toLower(p.description) CONTAINS toLower($q))
RETURN p.id AS id, p.description AS description, p.status AS status, p.hop AS hop
LIMIT $limit
