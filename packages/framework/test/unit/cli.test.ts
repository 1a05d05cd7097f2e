import { describe, expect, test } from 'vitest';
import { parseCommandLine } from '../../src/ops/cli.js';

describe('opkit command line', () => {
  test('all options', () => {
    const parsed = parseCommandLine([
      'run',
      './handlers.js',
      '--namespace',
      'a',
      '--namespace',
      'b',
      '--instance-id',
      'node-1',
      '--scope',
      'node',
      '--state-dir',
      '/tmp/s',
      '--log-level',
      'debug',
      '--probe-host',
      '127.0.0.1',
      '--probe-port',
      '0',
      '--concurrency',
      '8',
      '--grace-period',
      '5000',
      '--kubeconfig',
      '/tmp/kc',
      '--heap',
      'default',
    ]);
    expect(parsed).toEqual({
      module: './handlers.js',
      heap: 'default',
      settings: {
        namespaces: ['a', 'b'],
        instanceId: 'node-1',
        scope: 'node',
        stateDir: '/tmp/s',
        logLevel: 'debug',
        probes: { host: '127.0.0.1', port: 0 },
        concurrency: 8,
        gracePeriodMs: 5000,
        kubeconfigPath: '/tmp/kc',
      },
    });
  });

  test('defaults: probes on 0.0.0.0:8080, all namespaces, lean heap', () => {
    expect(parseCommandLine(['run', 'm.js', '--all-namespaces'], {})).toEqual({
      module: 'm.js',
      heap: 'lean',
      settings: { probes: { host: '0.0.0.0', port: 8080 } },
    });
  });

  test('heap: the option wins over $OPKIT_HEAP, which wins over the default (lean)', () => {
    const mode = (argv: string[], env: NodeJS.ProcessEnv): unknown => {
      const parsed = parseCommandLine(['run', 'm.js', ...argv], env);
      return parsed === 'help' ? parsed : parsed.heap;
    };
    expect(mode([], {})).toBe('lean');
    expect(mode([], { OPKIT_HEAP: 'default' })).toBe('default');
    expect(mode([], { OPKIT_HEAP: '' })).toBe('lean');
    expect(mode(['--heap', 'lean'], { OPKIT_HEAP: 'default' })).toBe('lean');
    expect(() => mode(['--heap', 'small'], {})).toThrow(/--heap must be lean or default/);
    expect(() => mode([], { OPKIT_HEAP: 'off' })).toThrow(/OPKIT_HEAP/);
  });

  test('usage errors', () => {
    expect(() => parseCommandLine([])).toThrow(/opkit run/);
    expect(() => parseCommandLine(['run'])).toThrow(/opkit run/);
    expect(() => parseCommandLine(['run', 'm.js', '--scope', 'galaxy'])).toThrow(/--scope/);
    expect(() => parseCommandLine(['run', 'm.js', '--concurrency', '0'])).toThrow(/--concurrency/);
    expect(() => parseCommandLine(['run', 'm.js', '--bogus'])).toThrow();
    expect(() => parseCommandLine(['run', 'm.js', '--all-namespaces', '--namespace', 'x'])).toThrow(/exclude/);
    expect(parseCommandLine(['--help'])).toBe('help');
  });
});
