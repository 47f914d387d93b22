// Set properties on existing nodes of label <<LABEL>> by id (e.g. filter scores, expanded flags).
UNWIND $rows AS r
MATCH (n:<<LABEL>> {id: r.id})
SET n += r.props
RETURN count(n) AS matched
