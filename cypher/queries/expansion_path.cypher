// How persona $id was reached: the chain of seeds from a hop-0 root, the relation of each step, and
// the source texts the root was extracted from. Run: personagraph query expansion_path -p id=p_...
MATCH (p:Persona {id: $id})
MATCH path = (root:Persona)-[*0..6]-(p)
WHERE root.hop = 0
  AND all(i IN range(1, length(path)) WHERE nodes(path)[i].expanded_from = nodes(path)[i - 1].id
                                         AND relationships(path)[i - 1].hop = nodes(path)[i].hop)
WITH root, path
ORDER BY length(path)
LIMIT 1
OPTIONAL MATCH (root)-[x:EXTRACTED_FROM]->(s:Source)
RETURN [n IN nodes(path) | n {.id, .description, .hop}] AS personas,
       [r IN relationships(path) | {type: type(r), relation: r.relation, hop: r.hop, run_id: r.run_id}] AS steps,
       collect(s {.id, .uri, stance: x.stance}) AS sources
