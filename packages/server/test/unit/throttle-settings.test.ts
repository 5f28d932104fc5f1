import { FleetwardError } from '@fleetward/protocol';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_THROTTLE_SETTINGS,
  parseThrottleSettings,
  Throttle,
  THROTTLE_SETTING_KEYS,
  THROTTLE_SETTING_SPECS,
  throttleSettingEnv,
} from '../../src/access/throttling/index.js';

function errorOf(input: unknown): FleetwardError {
  try {
    parseThrottleSettings(input);
  } catch (error) {
    if (error instanceof FleetwardError) return error;
    throw error;
  }
  throw new Error('parseThrottleSettings accepted the input');
}

describe('throttle settings (the `limits` config section)', () => {
  it('ok/no section or an empty one gives the defaults, which build a Throttle', () => {
    expect(parseThrottleSettings(undefined)).toBe(DEFAULT_THROTTLE_SETTINGS);
    expect(parseThrottleSettings({})).toEqual(DEFAULT_THROTTLE_SETTINGS);
    expect(() => new Throttle(DEFAULT_THROTTLE_SETTINGS, 0)).not.toThrow();
  });

  it('ok/every default is inside its own range', () => {
    for (const key of THROTTLE_SETTING_KEYS) {
      const { min, max } = THROTTLE_SETTING_SPECS[key];
      expect(DEFAULT_THROTTLE_SETTINGS[key], key).toBeGreaterThanOrEqual(min);
      expect(DEFAULT_THROTTLE_SETTINGS[key], key).toBeLessThanOrEqual(max);
    }
  });

  it('ok/some keys override the defaults; strings of digits (environment) are integers', () => {
    const settings = parseThrottleSettings({ messagesPerSecond: 5, maxConnections: ' 2000 ' });
    expect(settings).toMatchObject({ messagesPerSecond: 5, maxConnections: 2_000, messageBurst: DEFAULT_THROTTLE_SETTINGS.messageBurst });
    expect(Object.isFrozen(settings)).toBe(true);
  });

  it.each([
    ['unknown key', { messagesPerSecnd: 5 }, 'limits.messagesPerSecnd'],
    ['zero rate', { messagesPerSecond: 0 }, 'limits.messagesPerSecond'],
    ['fraction', { bytesPerSecond: 1.5 }, 'limits.bytesPerSecond'],
    ['negative string', { connectBurstPerThing: '-1' }, 'limits.connectBurstPerThing'],
    ['not a number', { handshakesPerSecond: 'lots' }, 'limits.handshakesPerSecond'],
    ['flapping needs two connects', { flappingMaxConnects: 1 }, 'limits.flappingMaxConnects'],
    ['burst below the largest payload', { maxPayloadBytes: 2_000_000 }, 'limits.byteBurst'],
    ['not an object', [1, 2], 'limits'],
  ])('fail/%s names the bad key', (_name, input, key) => {
    const error = errorOf(input);
    expect(error.code).toBe('FW_ERR_CONFIG_INVALID');
    expect(error.details['key']).toBe(key);
    expect(error.message).toContain(key);
  });

  it('ok/environment names derive from the keys', () => {
    expect(throttleSettingEnv('messagesPerSecond')).toBe('FLEETWARD_LIMITS_MESSAGES_PER_SECOND');
    expect(throttleSettingEnv('handshakesPerMinutePerSource')).toBe('FLEETWARD_LIMITS_HANDSHAKES_PER_MINUTE_PER_SOURCE');
  });
});
