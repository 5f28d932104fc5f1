import { ErrorWithSubackPacket, type MqttClient } from 'mqtt';
import { FleetwardError } from '@fleetward/protocol';

/**
 * Subscribes to one filter (QoS 1); a refused filter is FW_ERR_FORBIDDEN. One filter at a time:
 * MQTT.js rejects a whole multi-topic call when one is refused.
 */
export async function subscribeOne(client: MqttClient, filter: string): Promise<void> {
  const granted = await client.subscribeAsync(filter, { qos: 1 }).then(
    ([first]) => first?.qos ?? 0x80,
    (error: unknown) => {
      if (error instanceof ErrorWithSubackPacket) return 0x87;
      throw error;
    },
  );
  if (granted > 2) throw new FleetwardError('FW_ERR_FORBIDDEN', `the gateway refused the subscription to ${filter}`, { filter });
}

/** An answer the gateway owes the device, or FW_ERR_NOT_READY once `ms` have passed. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FleetwardError('FW_ERR_NOT_READY', message)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
