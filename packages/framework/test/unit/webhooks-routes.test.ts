/**
 * The decorators' options, the route table, the webhook configurations and the settings: pure, no server.
 */
import 'reflect-metadata';
import { describe, expect, test } from 'vitest';
import {
  AdmissionError,
  getAdmissionHandlers,
  kebabCase,
  Mutate,
  resolveAdmissionOptions,
  Validate,
  type AdmissionSpec,
} from '../../src/decorators/admission.js';
import {
  buildRoutes,
  requestMatchesRoute,
  webhookConfigurations,
  type AdmissionResource,
} from '../../src/webhooks/routes.js';
import { DEFAULT_WEBHOOK_PORT, defaultIdentity, resolveWebhookSettings } from '../../src/webhooks/settings.js';

const CONFIGMAPS: AdmissionResource = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };
const WIDGETS: AdmissionResource = { group: 'example.com', version: 'v1', plural: 'widgets', namespaced: false };

function spec(kind: AdmissionSpec['kind'], method: string, options = {}): AdmissionSpec {
  return { ...resolveAdmissionOptions(kind, method, options), order: 0 };
}

describe('@Validate and @Mutate', () => {
  class Hooks {
    @Validate()
    checkSize(): void {}

    @Mutate({ id: 'defaults', operations: ['CREATE'], failurePolicy: 'Ignore', timeoutSeconds: 3 })
    addDefaults(): void {}
  }

  test('record their handlers in declaration order with the defaults filled in', () => {
    const [validate, mutate] = getAdmissionHandlers(Hooks);
    expect(validate).toMatchObject({
      kind: 'validate',
      id: 'check-size',
      method: 'checkSize',
      operations: ['CREATE', 'UPDATE'],
      subresources: [''],
      failurePolicy: 'Fail',
      sideEffects: 'None',
      timeoutSeconds: 10,
    });
    expect(mutate).toMatchObject({ kind: 'mutate', id: 'defaults', operations: ['CREATE'], failurePolicy: 'Ignore' });
    expect(mutate!.order).toBeGreaterThan(validate!.order);
  });

  test.each([
    [{ id: 'Upper' }, 'id must be lower-case'],
    [{ operations: [] }, 'operations must not be empty'],
    [{ operations: ['PATCH'] }, 'unknown operation "PATCH"'],
    [{ failurePolicy: 'Sometimes' }, 'failurePolicy must be Fail or Ignore'],
    [{ sideEffects: 'Some' }, 'sideEffects must be None or NoneOnDryRun'],
    [{ timeoutSeconds: 31 }, 'timeoutSeconds must be an integer from 1 to 30'],
    [{ timeoutSeconds: 0 }, 'timeoutSeconds must be an integer from 1 to 30'],
    [{ subresources: [] }, 'subresources must not be empty'],
    [{ when: 'yes' }, 'when must be a function'],
  ])('refuse %j', (options, message) => {
    expect(() => Validate(options as never)({}, 'm', { value: () => undefined })).toThrow(message);
  });

  test('only decorate methods', () => {
    expect(() => Mutate()({}, 'field', undefined)).toThrow('not a method');
  });

  test('kebabCase makes method names path segments', () => {
    expect(kebabCase('checkSize')).toBe('check-size');
    expect(kebabCase('validate_Spec2')).toBe('validate-spec2');
    expect(kebabCase('HTTPRoute')).toBe('httproute');
  });

  test('AdmissionError defaults to 400 and refuses codes that are not errors', () => {
    expect(new AdmissionError('no')).toMatchObject({ code: 400, field: undefined, message: 'no' });
    expect(new AdmissionError('no', { code: 422, field: 'spec.x' })).toMatchObject({ code: 422, field: 'spec.x' });
    expect(() => new AdmissionError('no', { code: 200 })).toThrow('400-599');
  });
});

describe('routes', () => {
  test('one path per handler, named by kind, plural and id', () => {
    const routes = buildRoutes([
      { name: 'Hooks', resource: CONFIGMAPS, handlers: [spec('validate', 'check'), spec('mutate', 'check')] },
      { name: 'WidgetHooks', resource: WIDGETS, handlers: [spec('validate', 'check')] },
    ]);
    expect([...routes.keys()]).toEqual([
      '/validate/configmaps/check',
      '/mutate/configmaps/check',
      '/validate/widgets/check',
    ]);
    expect(routes.get('/validate/configmaps/check')!.webhookName).toBe('validate-check.configmaps.core');
    expect(routes.get('/validate/widgets/check')!.webhookName).toBe('validate-check.widgets.example.com');
  });

  test('two handlers on one path are a definition error naming both', () => {
    expect(() =>
      buildRoutes([
        { name: 'A', resource: CONFIGMAPS, handlers: [spec('validate', 'check')] },
        { name: 'B', resource: CONFIGMAPS, handlers: [spec('validate', 'x', { id: 'check' })] },
      ]),
    ).toThrow('B.x and A.check both answer /validate/configmaps/check');
  });

  test('a request for another resource than the route is for does not match', () => {
    const route = buildRoutes([{ name: 'A', resource: CONFIGMAPS, handlers: [spec('validate', 'c')] }]).get(
      '/validate/configmaps/c',
    )!;
    expect(requestMatchesRoute(route, { group: '', version: 'v1', resource: 'configmaps' })).toBe(true);
    expect(requestMatchesRoute(route, { group: '', version: 'v1', resource: 'secrets' })).toBe(false);
    expect(requestMatchesRoute(route, { group: 'x', version: 'v1', resource: 'configmaps' })).toBe(false);
  });
});

describe('webhookConfigurations', () => {
  const routes = buildRoutes([
    {
      name: 'A',
      resource: CONFIGMAPS,
      handlers: [
        spec('validate', 'check', { subresources: ['', 'status'], objectSelector: { matchLabels: { a: 'b' } } }),
        spec('mutate', 'fill', { operations: ['CREATE'], sideEffects: 'NoneOnDryRun' }),
      ],
    },
  ]);

  test('a URL client config gets the path appended, one webhook per handler, each in its kind', () => {
    const { validating, mutating } = webhookConfigurations(
      'hooks',
      routes.values(),
      { url: 'https://127.0.0.1:9443/' },
      'Q0E=',
    );
    expect(validating).toMatchObject({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: 'hooks' },
    });
    expect(validating.webhooks).toEqual([
      {
        name: 'validate-check.configmaps.core',
        admissionReviewVersions: ['v1'],
        clientConfig: { url: 'https://127.0.0.1:9443/validate/configmaps/check', caBundle: 'Q0E=' },
        rules: [
          {
            apiGroups: [''],
            apiVersions: ['v1'],
            operations: ['CREATE', 'UPDATE'],
            resources: ['configmaps', 'configmaps/status'],
            scope: 'Namespaced',
          },
        ],
        failurePolicy: 'Fail',
        sideEffects: 'None',
        timeoutSeconds: 10,
        matchPolicy: 'Exact',
        objectSelector: { matchLabels: { a: 'b' } },
      },
    ]);
    expect(mutating.kind).toBe('MutatingWebhookConfiguration');
    expect(mutating.webhooks).toEqual([
      expect.objectContaining({
        name: 'mutate-fill.configmaps.core',
        rules: [expect.objectContaining({ operations: ['CREATE'], resources: ['configmaps'] })],
        sideEffects: 'NoneOnDryRun',
        reinvocationPolicy: 'Never',
      }),
    ]);
  });

  test('a Service client config names the path and port 443 by default', () => {
    const { validating } = webhookConfigurations(
      'hooks',
      routes.values(),
      { service: { namespace: 'ops', name: 'hooks' } },
      'Q0E=',
    );
    expect((validating.webhooks as Array<{ clientConfig: unknown }>)[0]!.clientConfig).toEqual({
      service: { namespace: 'ops', name: 'hooks', path: '/validate/configmaps/check', port: 443 },
      caBundle: 'Q0E=',
    });
  });
});

describe('resolveWebhookSettings', () => {
  const url = { url: 'https://127.0.0.1:9443' };

  test('defaults: port 9443, name from the operator, managed certificates for the URL host, CA Secret in POD_NAMESPACE', () => {
    const settings = resolveWebhookSettings({ clientConfig: url }, ['WidgetOperator'], { POD_NAMESPACE: 'ops' });
    expect(settings).toMatchObject({
      host: '0.0.0.0',
      port: DEFAULT_WEBHOOK_PORT,
      name: 'widget-operator',
      configuration: 'apply',
      maxRequestBytes: 8 * 1024 * 1024,
      requestTimeoutMs: 30_000,
      certificates: {
        mode: 'managed',
        secret: { namespace: 'ops', name: 'widget-operator-webhook-ca' },
        dnsNames: [],
        ipAddresses: ['127.0.0.1'],
        checkIntervalMs: 60_000,
      },
    });
    expect(DEFAULT_WEBHOOK_PORT).toBe(9443);
  });

  test('a Service gives the in-cluster DNS names; a host name gives itself', () => {
    expect(defaultIdentity({ service: { namespace: 'ops', name: 'hooks' } })).toEqual({
      dnsNames: ['hooks.ops.svc', 'hooks.ops.svc.cluster.local'],
      ipAddresses: [],
    });
    expect(defaultIdentity({ url: 'https://hooks.example.com:8443' })).toEqual({
      dnsNames: ['hooks.example.com'],
      ipAddresses: [],
    });
    expect(defaultIdentity({ url: 'https://[::1]:8443' })).toEqual({ dnsNames: [], ipAddresses: ['::1'] });
  });

  test('files need a caFile unless the framework writes no configuration', () => {
    const files = { mode: 'files' as const, certFile: '/c', keyFile: '/k' };
    expect(() => resolveWebhookSettings({ clientConfig: url, certificates: files }, ['A'])).toThrow('caFile');
    expect(resolveWebhookSettings({ configuration: 'none', certificates: files }, ['A']).certificates).toMatchObject({
      mode: 'files',
      checkIntervalMs: 10_000,
    });
  });

  test.each([
    [{ clientConfig: url, port: 70000 }, 'port must be 0-65535'],
    [{ clientConfig: url, name: 'Bad_Name' }, 'DNS subdomain'],
    [{}, 'clientConfig (a url or a service) is needed'],
    [{ clientConfig: { url: 'http://127.0.0.1:9443' } }, 'must be https'],
    [{ clientConfig: { url: 'https://h/?a=b' } }, 'no query'],
    [{ clientConfig: { url: 'nope' } }, 'not a URL'],
    [{ clientConfig: { service: { namespace: 'ops' } } }, 'namespace and a name'],
    [{ clientConfig: url, configuration: 'maybe' }, 'apply, ca-bundle or none'],
    [{ clientConfig: url, certificates: { ipAddresses: ['nope'] } }, 'not an IP address'],
    [{ configuration: 'none' }, 'need dnsNames or ipAddresses'],
    [{ clientConfig: url, certificates: { servingValidityMs: 10, caValidityMs: 5 } }, 'shorter than caValidityMs'],
    [{ clientConfig: url, certificates: { mode: 'vault' } }, 'managed or files'],
    [{ clientConfig: url, maxRequestBytes: 0 }, 'maxRequestBytes must be positive'],
  ])('refuses %j', (settings, message) => {
    expect(() => resolveWebhookSettings(settings as never, ['A'], {})).toThrow(message);
  });
});
