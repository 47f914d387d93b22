// Remove property <<PROP>> from nodes of label <<LABEL>> by id.
UNWIND $ids AS i
MATCH (n:<<LABEL>> {id: i})
REMOVE n.<<PROP>>
RETURN count(n) AS matched
