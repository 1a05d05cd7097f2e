/**
 * The RBAC the webhook server declares, per configuration mode and certificate source.
 */
import { describe, expect, test } from 'vitest';
import { webhookPermissions } from '../../src/webhooks/permissions.js';
import { resolveWebhookSettings, type WebhookSettings } from '../../src/webhooks/settings.js';

const url = { url: 'https://127.0.0.1:9443' };
const CONFIGS = ['validatingwebhookconfigurations', 'mutatingwebhookconfigurations'];

function permissions(settings: WebhookSettings) {
  return webhookPermissions(resolveWebhookSettings(settings, ['Hooks'], { POD_NAMESPACE: 'ops' }));
}

describe('webhookPermissions', () => {
  test('apply with managed certificates: create and patch the configurations, the CA Secret in its namespace', () => {
    expect(permissions({ clientConfig: url })).toEqual([
      ...CONFIGS.map((resource) => ({ group: 'admissionregistration.k8s.io', resource, verbs: ['create', 'patch'] })),
      { group: '', resource: 'secrets', verbs: ['get', 'create', 'patch'], namespace: 'ops' },
    ]);
  });

  test('ca-bundle: get and patch of the named configurations only', () => {
    expect(permissions({ clientConfig: url, configuration: 'ca-bundle', name: 'hooks' })).toEqual([
      ...CONFIGS.map((resource) => ({
        group: 'admissionregistration.k8s.io',
        resource,
        verbs: ['get', 'patch'],
        resourceNames: ['hooks'],
      })),
      { group: '', resource: 'secrets', verbs: ['get', 'create', 'patch'], namespace: 'ops' },
    ]);
  });

  test('files and no configuration: nothing', () => {
    expect(
      permissions({ configuration: 'none', certificates: { mode: 'files', certFile: '/c', keyFile: '/k' } }),
    ).toEqual([]);
  });
});
