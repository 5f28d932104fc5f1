import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A battery level in percent, or null when the device has no battery it can read. */
export type BatterySource = () => Promise<number | null>;

/**
 * Linux power_supply class (Documentation/ABI/testing/sysfs-class-power): the `capacity` of the
 * first battery that powers the system. Peripherals' batteries (a wireless mouse: scope "Device")
 * and mains adapters are skipped; no class folder, no battery, or an unreadable file is null.
 */
export function powerSupplyBattery(root = '/sys/class/power_supply'): BatterySource {
  return async () => {
    const supplies = await readdir(root).catch(() => []);
    for (const supply of supplies.sort()) {
      const [type, scope] = await Promise.all([readTrimmed(join(root, supply, 'type')), readTrimmed(join(root, supply, 'scope'))]);
      if (type !== 'Battery' || scope === 'Device') continue;
      const capacity = asPercent(await readTrimmed(join(root, supply, 'capacity')));
      if (capacity !== null) return capacity;
    }
    return null;
  };
}

/** Levels in turn, then the last one for ever (the simulator's draining battery, a test's fixed level). */
export function scriptedBattery(levels: readonly (number | null)[]): BatterySource {
  let next = 0;
  return () => Promise.resolve(levels[Math.min(next++, levels.length - 1)] ?? null);
}

async function readTrimmed(path: string): Promise<string | null> {
  return readFile(path, 'utf8').then((text) => text.trim(), () => null);
}

function asPercent(text: string | null): number | null {
  if (text === null || !/^\d{1,3}$/.test(text)) return null;
  const value = Number(text);
  return value <= 100 ? value : null;
}
