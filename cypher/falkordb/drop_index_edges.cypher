// Drop one relationship property index (the guard's repair: a lookup through it would miss edges).
DROP INDEX FOR ()-[r:<<LABEL>>]-() ON (r.<<PROPERTY>>)
