MATCH (n) RETURN max(id(n)) AS max_id
