import { describe, expect, it } from 'vitest';
import { bypassesProxy, proxySettingsFromEnv } from './proxy.js';

describe('proxy variables, by curl\'s rules', () => {
  it('reads http_proxy in lower case only, https_proxy before HTTPS_PROXY, all_proxy as the fallback', () => {
    expect(proxySettingsFromEnv({ HTTP_PROXY: 'http://p:1' })).toEqual({ noProxy: '' });
    expect(proxySettingsFromEnv({ http_proxy: 'p:1' }).http).toBe('http://p:1/');
    expect(proxySettingsFromEnv({ https_proxy: 'http://a:1', HTTPS_PROXY: 'http://b:1' }).https).toBe('http://a:1/');
    expect(proxySettingsFromEnv({ HTTPS_PROXY: 'http://b:1' }).https).toBe('http://b:1/');
    expect(proxySettingsFromEnv({ ALL_PROXY: 'http://all:1' })).toEqual({ http: 'http://all:1/', https: 'http://all:1/', noProxy: '' });
    expect(proxySettingsFromEnv({ no_proxy: 'a', NO_PROXY: 'b' }).noProxy).toBe('a');
    expect(() => proxySettingsFromEnv({ https_proxy: 'socks5://s:1' })).toThrow(/https_proxy: a socks5 proxy is not supported/);
  });

  it('matches NO_PROXY entries as curl does; loopback is not exempt unless listed', () => {
    expect(bypassesProxy('127.0.0.1', '')).toBe(false);
    expect(bypassesProxy('localhost', 'example.com')).toBe(false);
    expect(bypassesProxy('registry.example.com', 'example.com')).toBe(true);
    expect(bypassesProxy('registry.example.com', '.example.com')).toBe(true);
    expect(bypassesProxy('example.com', '.example.com')).toBe(true);
    expect(bypassesProxy('notexample.com', 'example.com')).toBe(false);
    expect(bypassesProxy('anything', '*')).toBe(true);
    expect(bypassesProxy('anything', 'a, *')).toBe(false);
    expect(bypassesProxy('10.1.2.3', '10.0.0.0/8')).toBe(true);
    expect(bypassesProxy('11.1.2.3', '10.0.0.0/8')).toBe(false);
    expect(bypassesProxy('127.0.0.1', 'localhost')).toBe(false);
    expect(bypassesProxy('::1', '::1')).toBe(true);
    expect(bypassesProxy('[fd00::5]', 'fd00::/8')).toBe(true);
    expect(bypassesProxy('REGISTRY.Example.COM', 'example.com')).toBe(true);
  });
});
