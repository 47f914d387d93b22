// Every range index of the graph: (entity type, label or relationship type, indexed properties).
// The index guard (graph/indexes.py) checks what each one holds.
CALL db.indexes() YIELD label, properties, types, entitytype
RETURN entitytype AS entity, label, [k IN properties WHERE 'RANGE' IN types[k]] AS properties
