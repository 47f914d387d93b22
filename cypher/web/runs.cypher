// Recorded stage runs (Run nodes) with everything they hold: one per stage invocation, so few.
MATCH (r:Run)
RETURN r
