/**
 * Option checks shared by the throttling modules. A limit out of range is a configuration error:
 * it throws at start-up, naming the option, instead of silently throttling everything or nothing.
 */
export function positiveInteger(name: string, value: number, max: number = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${name} must be an integer between 1 and ${max}, not ${String(value)}`);
  }
  return value;
}

export function nonNegativeInteger(name: string, value: number, max: number = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer between 0 and ${max}, not ${String(value)}`);
  }
  return value;
}
