import type { ResponseActionName, Severity } from '../types.js';

export const BUILTIN_RULE_NAMES = ['new-listening-port', 'new-source-address', 'new-source-country', 'certificate-multiple-addresses', 'unknown-firmware'] as const;
export type BuiltinRule = (typeof BUILTIN_RULE_NAMES)[number];

export interface BuiltinSettings {
  readonly enabled: boolean;
  readonly severity: Severity;
  readonly actions: readonly ResponseActionName[];
}

/**
 * The rules every device is held to without a profile. Their defaults alert only: a new port or
 * address has benign causes (an update, a new cellular cell); one certificate from two places at
 * once has few, so it is high.
 */
export const BUILTIN_RULES: Readonly<Record<BuiltinRule, BuiltinSettings>> = {
  'new-listening-port': { enabled: true, severity: 'medium', actions: [] },
  'new-source-address': { enabled: true, severity: 'low', actions: [] },
  'new-source-country': { enabled: true, severity: 'medium', actions: [] },
  'certificate-multiple-addresses': { enabled: true, severity: 'high', actions: [] },
  'unknown-firmware': { enabled: true, severity: 'high', actions: [] },
};
