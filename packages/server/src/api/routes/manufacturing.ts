import { MANUFACTURING_BATCH_MAX, type Manufacturing } from '../../identity/manufacturing.js';
import type { Api } from '../types.js';
import { array, boolean, nullable, object, string } from '../json-schema.js';
import { AttributesSchema, IssuedCertificate, KeyStorageSchema, RegistryNameSchema, ThingNameSchema } from '../identity-schemas.js';
import { authenticatedErrors } from '../schemas.js';
import { actorOf } from './operators.js';

const Device = object(
  { name: ThingNameSchema, csr: string({ maxLength: 32_768, description: 'PEM CSR whose subject CN is the thing name' }) },
  { type: RegistryNameSchema, groups: array(RegistryNameSchema, { maxItems: 10 }), attributes: AttributesSchema, keyStorage: KeyStorageSchema },
);

const Result = object(
  { name: string(), ok: boolean() },
  { certificate: IssuedCertificate, error: object({ code: string(), message: string() }, { serial: nullable(string()) }) },
);

/** Bulk provisioning for a production line: each device is created with its certificate, or not at all. */
export function manufacturingRoutes(app: Api, deps: { readonly manufacturing: Manufacturing }): void {
  app.post(
    '/api/v1/things/provision',
    {
      config: { access: { kind: 'permission', permission: 'fleet:write' } },
      schema: {
        tags: ['things'],
        description: `Creates up to ${MANUFACTURING_BATCH_MAX} things with their certificates. Each device succeeds or fails on its own; an already provisioned device is FW_ERR_CONFLICT with its serial.`,
        body: object({ devices: array(Device, { minItems: 1, maxItems: MANUFACTURING_BATCH_MAX }) }),
        response: { 200: object({ results: array(Result) }), ...authenticatedErrors },
      },
    },
    async (request) => ({ results: await deps.manufacturing.provision(request.body.devices, actorOf(request)) }),
  );
}
