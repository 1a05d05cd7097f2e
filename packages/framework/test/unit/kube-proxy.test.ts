/** Which requests go through which proxy: client-go's (Go's httpproxy) rules for HTTPS_PROXY and NO_PROXY. */
import { describe, expect, it } from 'vitest';
import { chooseProxy, proxyAllowed, redactProxyUrl } from '../../src/kube/proxy.js';

const server = (url: string): URL => new URL(url);

describe('chooseProxy', () => {
  it("uses the kubeconfig's proxy-url for every server, NO_PROXY and loopback included", () => {
    const choice = chooseProxy(server('https://127.0.0.1:6443'), 'http://proxy.corp:3128', { NO_PROXY: '*' });
    expect(choice?.url.href).toBe('http://proxy.corp:3128/');
    expect(choice?.source).toBe('kubeconfig');
  });

  it('uses HTTPS_PROXY for https servers and HTTP_PROXY for plain ones, upper case first', () => {
    const env = { HTTPS_PROXY: 'http://upper:1', https_proxy: 'http://lower:2', http_proxy: 'http://plain:3' };
    expect(chooseProxy(server('https://api.example.com'), undefined, env)?.url.host).toBe('upper:1');
    expect(chooseProxy(server('https://api.example.com'), undefined, { https_proxy: 'http://lower:2' })?.url.host).toBe(
      'lower:2',
    );
    expect(chooseProxy(server('http://api.example.com'), undefined, env)?.url.host).toBe('plain:3');
    expect(chooseProxy(server('https://api.example.com'), undefined, {})).toBeUndefined();
  });

  it('takes a proxy without a scheme for an http:// proxy, and refuses SOCKS', () => {
    expect(chooseProxy(server('https://api.example.com'), undefined, { HTTPS_PROXY: 'proxy:8080' })?.url.href).toBe(
      'http://proxy:8080/',
    );
    expect(() => chooseProxy(server('https://api.example.com'), 'socks5://proxy:1080', {})).toThrow(/socks5/);
  });

  it('skips the environment proxy for hosts in NO_PROXY', () => {
    const env = { HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: '.internal' };
    expect(chooseProxy(server('https://api.internal:6443'), undefined, env)).toBeUndefined();
    expect(chooseProxy(server('https://api.example.com:6443'), undefined, env)).toBeDefined();
  });
});

describe('proxyAllowed (NO_PROXY)', () => {
  const cases: [host: string, port: string, noProxy: string, allowed: boolean][] = [
    ['api.example.com', '443', '', true],
    ['localhost', '443', '', false],
    ['127.0.0.1', '6443', '', false],
    ['127.8.9.1', '6443', '', false],
    ['[::1]', '6443', '', false],
    ['api.example.com', '443', '*', false],
    ['api.example.com', '443', 'example.com', false],
    ['example.com', '443', 'example.com', false],
    ['notexample.com', '443', 'example.com', true],
    ['example.com', '443', '.example.com', true],
    ['api.example.com', '443', '.example.com', false],
    ['api.example.com', '443', '*.example.com', false],
    ['API.Example.COM', '443', 'example.com', false],
    ['api.example.com', '443', ' other.org , example.com ', false],
    ['api.example.com', '6443', 'example.com:443', true],
    ['api.example.com', '443', 'example.com:443', false],
    ['10.1.2.3', '443', '10.0.0.0/8', false],
    ['11.1.2.3', '443', '10.0.0.0/8', true],
    ['10.1.2.3', '443', '10.1.2.3', false],
    ['10.1.2.3', '6443', '10.1.2.3:443', true],
    ['10.1.2.3', '443', '10.1.2.3:443', false],
    ['[fd00::1]', '443', 'fd00::/64', false],
    ['[fd00::1]', '443', 'fd00::1', false],
    ['[fd00::1]', '443', '[fd00::1]:443', false],
    ['[fd00::1]', '6443', '[fd00::1]:443', true],
    ['[fd01::1]', '443', 'fd00::/64', true],
  ];
  it.each(cases)('%s:%s with NO_PROXY=%j goes through the proxy: %s', (host, port, noProxy, allowed) => {
    expect(proxyAllowed(host, port, noProxy)).toBe(allowed);
  });
});

describe('redactProxyUrl', () => {
  it('hides the password', () => {
    expect(redactProxyUrl(new URL('http://user:s3cret@proxy:3128'))).toBe('http://user:***@proxy:3128');
    expect(redactProxyUrl(new URL('http://proxy:3128'))).toBe('http://proxy:3128');
  });
});
