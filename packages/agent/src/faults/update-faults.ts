/**
 * Faults the update client can be told to play, for tests and the simulator (never from the
 * configuration file: a production device has no switch that corrupts its own updates). Each one
 * exercises a path the platform must handle; none of them weakens a check.
 */
export const UPDATE_FAULTS = [
  /** The newly installed slot fails its health check: the device must roll back on its own. */
  'boot-failure',
  /** The device stops after the download starts and never reports again: the server's timeout must flag it. */
  'stall-update',
  /** One byte of the downloaded file is flipped before verification: the device must refuse to install it. */
  'corrupt-download',
] as const;
export type UpdateFault = (typeof UPDATE_FAULTS)[number];

export function isUpdateFault(value: string): value is UpdateFault {
  return (UPDATE_FAULTS as readonly string[]).includes(value);
}
