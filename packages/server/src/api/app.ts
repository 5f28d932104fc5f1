import { randomUUID } from 'node:crypto';
import type { TlsOptions } from 'node:tls';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import Fastify, { LogController } from 'fastify';
import type { FailureThrottle } from '../access/auth-throttle.js';
import type { Operators } from '../access/operators.js';
import type { PolicyStore } from '../access/policy-store/index.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { DataServices } from '../data/data-services.js';
import type { CaSummary } from '../identity/ca-repository.js';
import type { IssuingCaOperations } from '../identity/ca-rotation.js';
import type { CertificateAuthorities } from '../identity/certificate-authorities.js';
import type { Certificates } from '../identity/certificates.js';
import type { CrlPublisher } from '../identity/crl-publisher.js';
import type { Manufacturing } from '../identity/manufacturing.js';
import type { ClaimProvisioning } from '../identity/provisioning/claim.js';
import type { ThirdPartyCas } from '../identity/third-party-cas.js';
import type { EnrollmentTokens } from '../identity/provisioning/enrollment-tokens.js';
import type { ProvisioningTemplates } from '../identity/provisioning/templates.js';
import type { CredentialAudit } from '../identity/credential-audit/credential-audit.js';
import type { OcspResponder } from '../identity/ocsp-responder.js';
import type { Groups } from '../identity/registry/groups.js';
import type { ThingTypes } from '../identity/registry/thing-types.js';
import type { Things } from '../identity/registry/things.js';
import type { Logger } from '../observability/logger.js';
import type { NodeMetrics } from '../observability/metrics.js';
import { registerAccessControl } from './access.js';
import type { SchemaTypeProvider } from './json-schema.js';
import { problem, sendProblem, toProblem } from './problem.js';
import { auditRoutes } from './routes/audit.js';
import type { AuditCheckpoints } from '../audit/audit-checkpoints.js';
import { caRoutes } from './routes/cas.js';
import { credentialAuditRoutes } from './routes/credential-audit.js';
import { dataRoutes } from './routes/data.js';
import { dataWebhookRoutes } from './routes/data-webhooks.js';
import { certificateRoutes } from './routes/certificates.js';
import { estRoutes } from './routes/est.js';
import { manufacturingRoutes } from './routes/manufacturing.js';
import { templateRoutes } from './routes/templates.js';
import { pkiRoutes } from './routes/pki.js';
import { policyRoutes } from './routes/policies.js';
import { thingRoutes } from './routes/things.js';
import { healthRoutes, type Readiness } from './routes/health.js';
import { controlsRoutes } from './routes/controls.js';
import { alertRoutes } from './routes/alerts.js';
import { monitorRoutes } from './routes/monitor.js';
import type { AlertServices } from '../monitor/alerts/index.js';
import type { MonitorServices } from '../monitor/monitor-services.js';
import type { Canaries } from '../health/canaries.js';
import { operatorRoutes } from './routes/operators.js';
import { systemRoutes } from './routes/system.js';
import type { Api } from './types.js';
import { validatorCompiler } from './validation.js';
import type { DeviceBans } from '../access/device-bans.js';
import { banRoutes } from './routes/bans.js';
import type { UpdateServices } from '../updates/update-services.js';
import { deploymentRoutes } from './routes/deployments.js';
import { firmwareRoutes } from './routes/firmware.js';
import { updateRepositoryRoutes } from './routes/update-repository.js';

export interface ApiDependencies {
  readonly operators: Operators;
  readonly things: Things;
  readonly thingTypes: ThingTypes;
  readonly groups: Groups;
  readonly certificates: Certificates;
  readonly manufacturing: Manufacturing;
  readonly templates: ProvisioningTemplates;
  readonly enrollmentTokens: EnrollmentTokens;
  readonly claims: ClaimProvisioning;
  readonly thirdPartyCas: ThirdPartyCas;
  readonly cas: CertificateAuthorities;
  readonly caSummaries: () => Promise<CaSummary[]>;
  readonly issuingCa: IssuingCaOperations;
  readonly crl: CrlPublisher;
  readonly ocsp: OcspResponder;
  readonly credentialAudit: CredentialAudit;
  readonly policies: PolicyStore;
  readonly bans: DeviceBans;
  readonly audit: AuditLog;
  readonly auditCheckpoints: AuditCheckpoints;
  readonly throttle: FailureThrottle;
  readonly metrics: NodeMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly readiness: () => Promise<Readiness>;
  /** Rule 5: alerts, response actions, notifications; device security metrics and profiles. */
  readonly alerts: AlertServices;
  readonly monitor: Pick<MonitorServices, 'profiles' | 'metrics'>;
  /** Rule 6: the canaries' report, and running them now. */
  readonly canaries: Pick<Canaries, 'report' | 'run'>;
  readonly redactedConfig: Readonly<Record<string, unknown>>;
  /** Rule 9 (data contracts, purpose-bound reads); its routes are served when given. */
  readonly data: DataServices;
  /** Rule 4: artifacts, TUF repository, deployments, software inventory. */
  readonly updates: UpdateServices;
}

export interface ApiOptions {
  readonly tls: TlsOptions;
  readonly bodyLimitBytes: number;
  readonly version: string;
}

/** Builds the HTTPS operator API without binding a port (tests drive it with inject or listen). */
export async function buildApi(deps: ApiDependencies, options: ApiOptions): Promise<Api> {
  const app: Api = Fastify({
    https: options.tls,
    loggerInstance: deps.logger,
    // One line per request is written by the onResponse hook below, with the operator's name.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    return503OnClosing: true,
    // Connection and header limits against slow or oversized clients.
    connectionTimeout: 60_000,
    requestTimeout: 30_000,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
  }).withTypeProvider<SchemaTypeProvider>();

  app.setValidatorCompiler(validatorCompiler());
  await app.register(helmet, {
    // An API serves no page: nothing may load, frame or run from its answers.
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] } },
    frameguard: { action: 'deny' },
    hsts: { maxAge: 31_536_000, includeSubDomains: true },
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'Fleetward operator API', version: options.version, description: 'Errors are RFC 9457 problem documents with a stable `code` (docs/errors.md).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An operator API token (fwt_...)' } } },
      security: [{ bearer: [] }],
    },
  });

  app.addHook('onSend', async (_request, reply) => {
    // Answers can carry tokens: never store them in a cache.
    void reply.header('cache-control', 'no-store');
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    deps.metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    deps.metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    request.log.info({ method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime), operator: request.principal?.operator }, 'request');
  });
  app.setErrorHandler(async (error, request, reply) => {
    const body = toProblem(error, request.url.split('?')[0]);
    deps.metrics.problems.inc({ code: body.code });
    if (body.code === 'FW_ERR_INTERNAL') request.log.error({ err: error }, 'request failed');
    return sendProblem(reply, body);
  });
  app.setNotFoundHandler(async (request, reply) => {
    deps.metrics.problems.inc({ code: 'FW_ERR_NOT_FOUND' });
    return sendProblem(reply, problem('FW_ERR_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
  });

  registerAccessControl(app, deps);
  healthRoutes(app, deps);
  controlsRoutes(app, deps);
  operatorRoutes(app, deps);
  thingRoutes(app, deps);
  certificateRoutes(app, deps);
  manufacturingRoutes(app, deps);
  templateRoutes(app, deps);
  estRoutes(app, deps);
  caRoutes(app, deps);
  credentialAuditRoutes(app, deps);
  policyRoutes(app, deps);
  banRoutes(app, deps);
  pkiRoutes(app, deps);
  auditRoutes(app, deps);
  dataRoutes(app, { data: deps.data });
  dataWebhookRoutes(app, { webhooks: deps.data.webhooks });
  firmwareRoutes(app, { updates: deps.updates });
  alertRoutes(app, { alerts: deps.alerts });
  monitorRoutes(app, { profiles: deps.monitor.profiles, metrics: deps.monitor.metrics, now: () => deps.clock.now() });
  updateRepositoryRoutes(app, { updates: deps.updates, metrics: deps.metrics });
  deploymentRoutes(app, { deployments: deps.updates.deployments });
  systemRoutes(app, { redactedConfig: deps.redactedConfig, registry: deps.metrics.registry });
  await app.ready();
  return app;
}
