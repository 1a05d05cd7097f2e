/**
 * The `opkit run` flags of the webhook server: their `parseArgs` options, their usage text, and the settings they
 * make. Any `--webhook-*` flag turns the server on. Pure.
 */
import { join } from 'node:path';
import type { WebhookSettings } from './settings.js';

/** The flags, for `parseArgs`. */
export const WEBHOOK_FLAGS = {
  'webhook-port': { type: 'string' },
  'webhook-host': { type: 'string' },
  'webhook-url': { type: 'string' },
  'webhook-service': { type: 'string' },
  'webhook-name': { type: 'string' },
  'webhook-configuration': { type: 'string' },
  'webhook-cert-dir': { type: 'string' },
  'webhook-ca-secret': { type: 'string' },
  'webhook-dns-name': { type: 'string', multiple: true },
  'webhook-ip': { type: 'string', multiple: true },
} as const;

/** Their lines in `opkit run --help`. */
export const WEBHOOK_USAGE = `
Admission webhooks (@Validate/@Mutate; any of these turns the server on; see docs/webhooks.md):
  --webhook-port <port>     HTTPS port of the webhook server (default: 9443)
  --webhook-host <host>     its address (default: 0.0.0.0)
  --webhook-service <ns/name[:port]>
                            the Service the API server calls (in a cluster; port default 443)
  --webhook-url <url>       or the URL it calls (https://host:port, for local runs)
  --webhook-name <name>     name of the webhook configurations (default: the first operator's, kebab case)
  --webhook-configuration <apply|ca-bundle|none>
                            write the configurations (default), only their caBundle, or nothing
  --webhook-cert-dir <dir>  serve tls.crt/tls.key from <dir> (re-read when they change) and write its ca.crt as
                            caBundle (a cert-manager Secret's layout); default: certificates made and renewed by
                            the framework from a CA kept in a Secret
  --webhook-ca-secret <ns/name>
                            that Secret (default: $POD_NAMESPACE or default / <name>-webhook-ca)
  --webhook-dns-name <name> a DNS name for the managed serving certificate (repeatable; default: from the Service
                            or URL)
  --webhook-ip <ip>         an IP address for it (repeatable)
`;

/** The values `parseArgs` gives for {@link WEBHOOK_FLAGS}. */
export type WebhookFlagValues = {
  [K in keyof typeof WEBHOOK_FLAGS]?: (typeof WEBHOOK_FLAGS)[K] extends { multiple: true } ? string[] : string;
};

function namespaced(flag: string, value: string): { namespace: string; name: string; port?: number } {
  const match = /^([a-z0-9-]+)\/([a-z0-9.-]+)(?::(\d+))?$/.exec(value);
  if (!match)
    throw new Error(`${flag} must be <namespace>/<name>${flag === '--webhook-service' ? '[:port]' : ''}, not ${value}`);
  const [, namespace, name, port] = match as unknown as [string, string, string, string | undefined];
  return { namespace, name, ...(port ? { port: Number(port) } : {}) };
}

/** The settings the flags ask for, or undefined when none is given (no webhook server). */
export function webhookSettingsFromFlags(values: WebhookFlagValues): WebhookSettings | undefined {
  if (!Object.keys(WEBHOOK_FLAGS).some((flag) => values[flag as keyof WebhookFlagValues] !== undefined))
    return undefined;
  if (values['webhook-url'] && values['webhook-service']) {
    throw new Error('--webhook-url and --webhook-service exclude each other');
  }
  const settings: WebhookSettings = {};
  if (values['webhook-port'] !== undefined) {
    const port = Number(values['webhook-port']);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new Error(`--webhook-port must be a port number, not ${values['webhook-port']}`);
    }
    settings.port = port;
  }
  if (values['webhook-host']) settings.host = values['webhook-host'];
  if (values['webhook-url']) settings.clientConfig = { url: values['webhook-url'] };
  if (values['webhook-service'])
    settings.clientConfig = { service: namespaced('--webhook-service', values['webhook-service']) };
  if (values['webhook-name']) settings.name = values['webhook-name'];
  const configuration = values['webhook-configuration'];
  if (configuration !== undefined) {
    if (configuration !== 'apply' && configuration !== 'ca-bundle' && configuration !== 'none') {
      throw new Error(`--webhook-configuration must be apply, ca-bundle or none, not ${configuration}`);
    }
    settings.configuration = configuration;
  }
  const dir = values['webhook-cert-dir'];
  if (dir) {
    if (values['webhook-ca-secret'] || values['webhook-dns-name'] || values['webhook-ip']) {
      throw new Error(
        '--webhook-cert-dir excludes the managed-certificate flags (--webhook-ca-secret, --webhook-dns-name, --webhook-ip)',
      );
    }
    settings.certificates = {
      mode: 'files',
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      ...(configuration === 'none' ? {} : { caFile: join(dir, 'ca.crt') }),
    };
  } else {
    const secret = values['webhook-ca-secret'];
    settings.certificates = {
      mode: 'managed',
      ...(secret ? { secret: namespaced('--webhook-ca-secret', secret) } : {}),
      ...(values['webhook-dns-name'] ? { dnsNames: values['webhook-dns-name'] } : {}),
      ...(values['webhook-ip'] ? { ipAddresses: values['webhook-ip'] } : {}),
    };
  }
  return settings;
}
