// The property keys present on these personas (to project exactly those in sample_members).
UNWIND $ids AS i
MATCH (p:Persona {id: i})
UNWIND keys(p) AS key
RETURN DISTINCT key
