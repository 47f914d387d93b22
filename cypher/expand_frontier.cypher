// The expansion frontier: accepted personas at hop $hop not yet expanded, those in the most focus
// regions first ($focus: [{key, values}], [] = no focus), then by id, so every run walks them in the
// same order (a rerun after a crash continues with the same chunks). `pending` ('h<hop>' while not
// expanded) is the indexed key: `hop` and `expanded` hold 0 and false, which no index may hold.
MATCH (p:Persona)
WHERE p.pending = $pending AND p.status = 'accepted' AND p.expanded = false
WITH p, reduce(s = 0, f IN $focus | s + CASE WHEN p[f.key] IN f.values THEN 1 ELSE 0 END) AS focus_score
RETURN p.id AS id, p.description AS description, focus_score
ORDER BY focus_score DESC, id
LIMIT $limit
