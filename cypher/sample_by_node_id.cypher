// The persona ids behind internal node ids, for uniform draws by rejection sampling: ids that are
// not a Persona with a status in $statuses give no row. The label and status are tested after
// the match so that the planner seeks by id (a `:Persona` pattern makes FalkorDB scan an index).
UNWIND $node_ids AS n
MATCH (p) WHERE id(p) = n
WITH n, p WHERE p:Persona AND p.status IN $statuses
RETURN n AS node, p.id AS id
