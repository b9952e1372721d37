// The little of oidc-provider's API the GitLab stand-in uses (the package ships no types).
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface IssuedAccessToken {
    jti: string;
    accountId: string;
    scope?: string;
  }

  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    proxy: boolean;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    on(event: 'access_token.saved', listener: (token: IssuedAccessToken) => void): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
}
