// Outgoing edges of the given <<LABEL>> nodes (used to stream the whole graph out page by page).
UNWIND $ids AS i
MATCH (a:<<LABEL>> {id: i})-[e]->(b)
RETURN a.id AS source, labels(a)[0] AS source_label, type(e) AS type,
       b.id AS target, labels(b)[0] AS target_label, properties(e) AS props
