/**
 * The `opkit run --webhook-*` flags: off without them, the settings they make, and their usage errors.
 */
import { describe, expect, test } from 'vitest';
import { parseCommandLine } from '../../src/ops/cli.js';

function webhooks(...flags: string[]): unknown {
  const parsed = parseCommandLine(['run', 'op.js', ...flags], {});
  if (parsed === 'help') throw new Error('help');
  return parsed.settings.webhooks;
}

describe('opkit run --webhook-*', () => {
  test('no flag, no webhook server', () => {
    expect(webhooks()).toBeUndefined();
  });

  test('a Service and managed certificates from a named Secret', () => {
    expect(
      webhooks('--webhook-service', 'ops/hooks:8443', '--webhook-ca-secret', 'ops/hooks-ca', '--webhook-port', '9000'),
    ).toEqual({
      port: 9000,
      clientConfig: { service: { namespace: 'ops', name: 'hooks', port: 8443 } },
      certificates: { mode: 'managed', secret: { namespace: 'ops', name: 'hooks-ca' } },
    });
  });

  test('a URL, extra names, the configuration mode', () => {
    expect(
      webhooks(
        '--webhook-url',
        'https://127.0.0.1:9443',
        '--webhook-ip',
        '127.0.0.1',
        '--webhook-dns-name',
        'a.local',
        '--webhook-dns-name',
        'b.local',
        '--webhook-configuration',
        'ca-bundle',
        '--webhook-name',
        'hooks',
      ),
    ).toEqual({
      clientConfig: { url: 'https://127.0.0.1:9443' },
      name: 'hooks',
      configuration: 'ca-bundle',
      certificates: { mode: 'managed', dnsNames: ['a.local', 'b.local'], ipAddresses: ['127.0.0.1'] },
    });
  });

  test("a certificate directory in cert-manager's layout", () => {
    expect(webhooks('--webhook-service', 'ops/hooks', '--webhook-cert-dir', '/certs')).toEqual({
      clientConfig: { service: { namespace: 'ops', name: 'hooks' } },
      certificates: { mode: 'files', certFile: '/certs/tls.crt', keyFile: '/certs/tls.key', caFile: '/certs/ca.crt' },
    });
    expect(webhooks('--webhook-configuration', 'none', '--webhook-cert-dir', '/certs')).toMatchObject({
      certificates: { mode: 'files', certFile: '/certs/tls.crt', keyFile: '/certs/tls.key' },
    });
  });

  test.each([
    [['--webhook-port', 'x'], '--webhook-port must be a port number'],
    [['--webhook-url', 'https://a', '--webhook-service', 'a/b'], 'exclude each other'],
    [['--webhook-service', 'hooks'], '--webhook-service must be <namespace>/<name>[:port]'],
    [['--webhook-ca-secret', 'x'], '--webhook-ca-secret must be <namespace>/<name>'],
    [['--webhook-configuration', 'all'], 'apply, ca-bundle or none'],
    [['--webhook-cert-dir', '/c', '--webhook-ip', '127.0.0.1'], 'excludes the managed-certificate flags'],
  ])('refuses %j', (flags, message) => {
    expect(() => webhooks(...flags)).toThrow(message);
  });
});
