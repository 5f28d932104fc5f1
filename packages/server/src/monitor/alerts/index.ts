export * from './alert-states.js';
export { Alerts, ALERT_LIMITS, DETECTION_ACTOR, type Alert, type AlertInput, type AlertQuery, type TimelineEntry } from './alerts.js';
export { AlertServices, allOf, updateAlertsToAlerts, type AlertServicesDependencies, type DetectionOutcome, type Incident } from './alert-services.js';
export { alertTopic, Notifier, NOTIFY_LIMITS, resealWebhookSecrets, type Delivery, type OperatorPublish, type Webhook, type WebhookRequest } from './notifier.js';
export type { WebhookPost } from '../../webhooks/https-webhook.js';
export { RELEASE_ACTOR, ResponseActions, RESPONSE_LIMITS, type ActionParams, type ActionRequest, type ResponseAction } from './response-actions.js';
export { Suppressions, SUPPRESSION_LIMITS, suppresses, type Suppression, type SuppressionRequest } from './suppressions.js';
export { backoffMs, DELIVERY_HEADER, SIGNATURE_HEADER, signBody, verifySignature } from '../../webhooks/webhook-signature.js';
