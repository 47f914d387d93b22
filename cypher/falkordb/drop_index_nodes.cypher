// Drop one node property index (the guard's repair: a lookup through it would miss nodes).
DROP INDEX FOR (n:<<LABEL>>) ON (n.<<PROPERTY>>)
