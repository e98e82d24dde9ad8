/**
 * The order in which a connection cycles through its request templates: each template
 * index appears `weight` times, interleaved (weights 3:1 give 0,1,0,0 rather than
 * 0,0,0,1), so that any window of sends keeps roughly the intended proportions.
 */
export function mixSchedule(templates: readonly { readonly label: string; readonly weight: number }[]): Uint16Array {
  if (templates.length === 0) throw new Error('a load needs at least one request template');
  const total = templates.reduce((sum, t) => {
    if (!Number.isInteger(t.weight) || t.weight < 1) throw new Error(`bad weight for ${t.label}: ${t.weight}`);
    return sum + t.weight;
  }, 0);
  // Smooth weighted round robin: the template furthest behind its share goes next.
  const credit = templates.map(() => 0);
  const schedule = new Uint16Array(total);
  for (let i = 0; i < total; i++) {
    let best = 0;
    for (let t = 0; t < templates.length; t++) {
      credit[t] += templates[t].weight;
      if (credit[t] > credit[best]) best = t;
    }
    credit[best] -= total;
    schedule[i] = best;
  }
  return schedule;
}
