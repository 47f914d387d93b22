// Personas by id, as property maps.
UNWIND $ids AS i
MATCH (p:Persona {id: i})
RETURN p
