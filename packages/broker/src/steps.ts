export type StepResult = 'next' | 'stop';

/** One step of a protocol flow: it continues the flow, or stops it (having answered or closed). */
export type Step<C> = (context: C) => StepResult | Promise<StepResult>;

/**
 * Runs a flow's steps in order. Steps that answer synchronously run synchronously, so a flow of
 * synchronous steps (an allow-all policy on the hot path) allocates no promise.
 */
export function runSteps<C>(steps: readonly Step<C>[], context: C, from = 0): StepResult | Promise<StepResult> {
  for (let index = from; index < steps.length; index++) {
    const result = (steps[index] as Step<C>)(context);
    if (typeof result !== 'string') return result.then((settled) => (settled === 'stop' ? 'stop' : runSteps(steps, context, index + 1)));
    if (result === 'stop') return 'stop';
  }
  return 'next';
}
