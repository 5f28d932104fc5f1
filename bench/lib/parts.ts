/** The parts of a scenario `variable` names (comma-separated; all of them when unset); an unknown name stops the run. */
export function chosenParts<P extends string>(variable: string, all: readonly P[]): ReadonlySet<P> {
  const named = (process.env[variable] ?? all.join(',')).split(',').map((part) => part.trim());
  const unknown = named.filter((part) => !(all as readonly string[]).includes(part));
  if (unknown.length > 0) throw new Error(`${variable}: unknown part ${unknown.join(', ')} (the parts are ${all.join(', ')})`);
  return new Set(named as P[]);
}
