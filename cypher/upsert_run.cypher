// A pipeline run and its accounting (requests, tokens, counts), merged by id.
MERGE (r:Run {id: $id})
SET r += $props
