/** Admission webhooks: the server, its certificates and configurations (see docs/webhooks.md). */
export { startWebhooks, type AdmissionOperator, type StartWebhooksOptions, type WebhookHandle } from './webhooks.js';
export {
  DEFAULT_WEBHOOK_PORT,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  resolveWebhookSettings,
  type WebhookSettings,
  type ManagedCertificates,
  type CertificateFiles,
  type ResolvedWebhookSettings,
  type WebhookRuntimeSettings,
} from './settings.js';
export type { ClientConfigBase } from './routes.js';
export { webhookPermissions } from './permissions.js';
