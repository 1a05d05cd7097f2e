/**
 * Writes the webhook configurations, or only their `caBundle`.
 *
 * Every replica may write at any time, without leader election: what they write is derived from the shared CA
 * Secret and the handlers (the same code on every replica), so concurrent writes write the same thing. With
 * `apply`, server-side apply under one field manager makes a write idempotent; with `ca-bundle`, a JSON patch per
 * webhook guarded by the webhook's name sets only `clientConfig.caBundle` and leaves the rest to whoever shipped it.
 */
import type { Logger } from 'pino';
import { isNotFound, type KubeApi, type KubeObject } from '../kube/types.js';
import { CONFIGURATION_RESOURCES, webhookConfigurations, type AdmissionRoute } from './routes.js';
import type { ResolvedWebhookSettings } from './settings.js';

interface Configuration extends KubeObject {
  webhooks?: Array<{ name: string; clientConfig?: { caBundle?: string } }>;
}

/** Writes `caBundle` (PEM) into the configurations as `settings.configuration` says; a no-op for `'none'`. */
export async function writeConfigurations(
  api: KubeApi,
  settings: ResolvedWebhookSettings,
  routes: Iterable<AdmissionRoute>,
  caBundlePem: string,
  logger: Logger,
  fieldManager: string,
): Promise<void> {
  const caBundle = Buffer.from(caBundlePem, 'utf8').toString('base64');
  if (settings.configuration === 'none') return;
  if (settings.configuration === 'apply') {
    const all = [...routes];
    const bodies = webhookConfigurations(settings.name, all, settings.clientConfig!, caBundle);
    for (const kind of ['validate', 'mutate'] as const) {
      // A configuration without webhooks is not written: there is nothing for it to say.
      if (!all.some((route) => route.spec.kind === kind)) continue;
      const body = kind === 'validate' ? bodies.validating : bodies.mutating;
      if (!api.apply) throw new Error('the API client cannot server-side apply');
      await api.apply(CONFIGURATION_RESOURCES[kind], body, { force: true, fieldManager });
    }
    return;
  }
  let found = 0;
  for (const kind of ['validate', 'mutate'] as const) {
    let configuration: Configuration;
    try {
      configuration = await api.get<Configuration>(CONFIGURATION_RESOURCES[kind], settings.name);
    } catch (error) {
      if (isNotFound(error)) continue;
      throw error;
    }
    found++;
    const operations = (configuration.webhooks ?? []).flatMap((webhook, index) =>
      webhook.clientConfig?.caBundle === caBundle
        ? []
        : [
            { op: 'test', path: `/webhooks/${index}/name`, value: webhook.name },
            { op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value: caBundle },
          ],
    );
    if (operations.length > 0)
      await api.patch(CONFIGURATION_RESOURCES[kind], settings.name, operations, { type: 'json' });
  }
  if (found === 0) {
    logger.warn(
      { configuration: settings.name },
      'no Validating/MutatingWebhookConfiguration of that name to write caBundle into (apply it first)',
    );
  }
}
