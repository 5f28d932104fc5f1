import { errorCodes } from '@fleetward/protocol';
import { describe, expect, it } from 'vitest';
import { deploymentRequest } from '../../../src/cli/commands/deploy.js';
import { refusalOf } from '../../helpers/refusals.js';

describe('fleetward deploy create flags', () => {
  it('ok/every flag maps to the API request', () => {
    expect(
      deploymentRequest('fw-1.2.3', {
        things: 'a, b',
        groups: 'g',
        query: 'type=thermostat,attr.floor=3,attr.site=north',
        phases: '10%,50%,100%',
        rate: '60',
        exponential: true,
        abortFailureRate: '0.2',
        abortMin: '5',
        timeout: '1800',
        window: '02:00-04:00',
        health: 'abort',
      }),
    ).toEqual({
      target: 'fw-1.2.3',
      selection: { things: ['a', 'b'], groups: ['g'], query: { thingType: 'thermostat', attributes: { floor: '3', site: 'north' } } },
      phases: ['10%', '50%', '100%'],
      ratePerMinute: 60,
      exponential: true,
      abort: { failureRate: 0.2, minDevices: 5 },
      timeoutSeconds: 1800,
      maintenanceWindow: { start: '02:00', end: '04:00' },
      health: { action: 'abort' },
    });
  });

  it('ok/only what is given is sent (the server fills defaults)', () => {
    expect(deploymentRequest('fw-1.2.3', { groups: 'g' })).toEqual({ target: 'fw-1.2.3', selection: { groups: ['g'] } });
  });

  it('fail/bad usage exits 2', () => {
    const cases: Record<string, unknown>[] = [
      {},
      { things: '' },
      { things: 'a', query: 'color=red' },
      { things: 'a', query: 'type' },
      { things: 'a', rate: '0' },
      { things: 'a', rate: 'fast' },
      { things: 'a', abortFailureRate: '1.5' },
      { things: 'a', abortFailureRate: '' },
      { things: 'a', abortMin: '-1' },
      { things: 'a', window: '2-4' },
      { things: 'a', health: 'maybe' },
    ];
    for (const options of cases) {
      const error = refusalOf(() => deploymentRequest('fw-1', options));
      expect(error.code, JSON.stringify(options)).toBe('FW_ERR_USAGE');
      expect(errorCodes[error.code].exit).toBe(2);
    }
  });
});
