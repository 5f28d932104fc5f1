/**
 * The lifecycle of a thing, as one transition table. Only an active thing may connect;
 * decommissioned is final. Every transition is audited by the registry.
 */
export const THING_STATES = ['pending', 'active', 'suspended', 'quarantined', 'decommissioned'] as const;
export type ThingState = (typeof THING_STATES)[number];

const TRANSITIONS: Readonly<Record<ThingState, readonly ThingState[]>> = {
  pending: ['active', 'decommissioned'],
  active: ['suspended', 'quarantined', 'decommissioned'],
  suspended: ['active', 'quarantined', 'decommissioned'],
  quarantined: ['active', 'suspended', 'decommissioned'],
  decommissioned: [],
};

export function allowedTransitions(from: ThingState): readonly ThingState[] {
  return TRANSITIONS[from];
}

export function canTransition(from: ThingState, to: ThingState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isFinal(state: ThingState): boolean {
  return TRANSITIONS[state].length === 0;
}

/** Whether a thing in this state may hold a live connection. */
export function mayConnect(state: ThingState): boolean {
  switch (state) {
    case 'active':
      return true;
    case 'pending':
    case 'suspended':
    case 'quarantined':
    case 'decommissioned':
      return false;
  }
}

export function isThingState(value: unknown): value is ThingState {
  return typeof value === 'string' && (THING_STATES as readonly string[]).includes(value);
}
