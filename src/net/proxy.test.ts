import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
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

  it('connects to a proxy given without a port on 1080 (443 for an https:// proxy), as curl documents; an explicit port is kept, :80 included', () => {
    expect(proxySettingsFromEnv({ https_proxy: 'http://proxy.example.com' }).https).toBe('http://proxy.example.com:1080/');
    expect(proxySettingsFromEnv({ http_proxy: 'proxy.example.com' }).http).toBe('http://proxy.example.com:1080/');
    expect(proxySettingsFromEnv({ ALL_PROXY: 'http://user:pw@[fd00::1]/' }).https).toBe('http://user:pw@[fd00::1]:1080/');
    expect(proxySettingsFromEnv({ https_proxy: 'http://proxy.example.com:' }).https).toBe('http://proxy.example.com:1080/');
    expect(proxySettingsFromEnv({ https_proxy: 'https://proxy.example.com' }).https).toBe('https://proxy.example.com/');
    expect(new URL(proxySettingsFromEnv({ https_proxy: 'http://proxy.example.com:80' }).https as string).port).toBe('');
    expect(proxySettingsFromEnv({ https_proxy: 'http://user:p%40ss@proxy.example.com:3128' }).https).toBe('http://user:p%40ss@proxy.example.com:3128/');
  });

  it('refuses malformed percent-encoding in the credentials as input, naming the variable and not the value', () => {
    for (const value of ['http://us%zzer:pw@proxy:3128', 'http://user:p%4@proxy:3128', 'http://user:%E0%A4%A@proxy']) {
      let caught: unknown;
      try {
        proxySettingsFromEnv({ HTTPS_PROXY: value });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(UsageError);
      const err = caught as UsageError;
      expect(err.message).toBe('HTTPS_PROXY: the user name or password is not valid percent-encoding');
      expect(`${err.message} ${err.hint ?? ''}`).not.toMatch(/us%zzer|p%4@|%E0/);
    }
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
