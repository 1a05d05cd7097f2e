/**
 * The RBAC the webhook server needs, declared next to the code that sends the requests (as `ReportWriter.permissions`
 * is): pass it to `derivePermissions({ permissions })`. Pure.
 */
import { permission, type PermissionDeclaration } from '../manifests/permissions.js';
import { CONFIGURATION_RESOURCES } from './routes.js';
import type { ResolvedWebhookSettings } from './settings.js';

const SECRETS = { group: '', plural: 'secrets' };

/**
 * What the server sends with `settings` (from `resolveWebhookSettings`):
 * - `configuration: 'apply'`: `create`, `patch` on both webhook configuration resources (server-side apply creates
 *   the object when it is missing, which RBAC checks as `create`);
 * - `'ca-bundle'`: `get`, `patch` on them, for the configurations named `settings.name` only;
 * - managed certificates: `get`, `create`, `patch` on Secrets in the CA Secret's namespace.
 */
export function webhookPermissions(settings: ResolvedWebhookSettings): PermissionDeclaration[] {
  const declarations: PermissionDeclaration[] = [];
  for (const resource of Object.values(CONFIGURATION_RESOURCES)) {
    if (settings.configuration === 'apply') declarations.push(permission(resource, ['create', 'patch']));
    if (settings.configuration === 'ca-bundle') {
      declarations.push(permission(resource, ['get', 'patch'], { resourceNames: [settings.name] }));
    }
  }
  const { certificates } = settings;
  if (certificates.mode === 'managed') {
    declarations.push(permission(SECRETS, ['get', 'create', 'patch'], { namespace: certificates.secret.namespace }));
  }
  return declarations;
}
