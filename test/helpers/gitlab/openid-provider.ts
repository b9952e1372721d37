// GitLab as an OpenID Connect provider, in the stand-in: oidc-provider (a certified OpenID
// Provider implementation) on the stand-in's own origin, with GitLab's paths and behaviour. It
// serves the discovery document and the JWKS for the whole stand-in: its key is the one CI ID
// tokens are signed with (id-tokens.ts), so sign-in and CI tokens come from one issuer and key set.
// https://docs.gitlab.com/integration/openid_connect_provider/:
//   discovery at /.well-known/openid-configuration; authorize, token and userinfo under /oauth/
//   (https://docs.gitlab.com/api/oauth2/), keys at /oauth/discovery/keys;
//   `sub` is the user's id; `nickname` (the username) comes from userinfo, not the ID token.
// Sign-in is oidc-provider's development form: any password, the login is the GitLab username.
// Each access token it issues becomes a token of the model with its scopes, so the REST API
// answers it as GitLab answers an OAuth token (https://docs.gitlab.com/api/rest/authentication/#oauth-20-tokens).
import type { IncomingMessage, ServerResponse } from 'node:http';
import Provider from 'oidc-provider';
import type { SigningKey } from './id-tokens.js';
import type { GitlabModel, TokenScope } from './model.js';

export interface OidcClientSpec {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
}

export interface OidcProvider {
  handles(path: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse): void;
}

/** Scopes of an OAuth application (https://docs.gitlab.com/integration/oauth_provider/#view-all-authorized-applications). */
const SCOPES = ['openid', 'profile', 'email', 'read_user', 'read_api', 'api', 'read_registry'];
const ROUTES = {
  authorization: '/oauth/authorize',
  token: '/oauth/token',
  userinfo: '/oauth/userinfo',
  jwks: '/oauth/discovery/keys',
  revocation: '/oauth/revoke',
  introspection: '/oauth/introspect',
  end_session: '/oauth/logout',
};
const PREFIXES = ['/.well-known/openid-configuration', '/oauth/', '/interaction/', '/session/'];

export function createOidcProvider(issuer: string, model: GitlabModel, clients: readonly OidcClientSpec[], key: SigningKey): OidcProvider {
  const provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      client_id: c.clientId,
      client_secret: c.clientSecret,
      redirect_uris: c.redirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    jwks: { keys: [key.privateJwk] },
    // GitLab signs ID tokens RS256 only.
    enabledJWA: { idTokenSigningAlgValues: ['RS256'] },
    routes: ROUTES,
    scopes: SCOPES,
    claims: { openid: ['sub', 'nickname', 'preferred_username', 'name'] },
    pkce: { required: () => true },
    // GitLab answers every code exchange with a refresh token (https://docs.gitlab.com/api/oauth2/#authorization-code-with-proof-key-for-code-exchange-pkce).
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) => client.grantTypeAllowed('refresh_token'),
    features: { devInteractions: { enabled: true }, revocation: { enabled: true }, userinfo: { enabled: true } },
    cookies: { keys: ['gitlab-stand-in-cookie-key'] },
    ttl: { AccessToken: 7200, AuthorizationCode: 600, IdToken: 3600, Interaction: 3600, Session: 86400, Grant: 86400 },
    // The login typed in the form is the username; GitLab's `sub` is the user's id.
    findAccount: (_ctx: unknown, login: string) => {
      const user = model.users.get(login);
      if (!user) return undefined;
      return {
        accountId: login,
        claims: () => ({ sub: String(user.id), nickname: user.username, preferred_username: user.username, name: user.username }),
      };
    },
  });
  provider.on('access_token.saved', (token) => {
    const scopes = (token.scope ?? '').split(' ').filter((s): s is TokenScope => ['api', 'read_api', 'read_user', 'read_registry'].includes(s));
    model.addToken({ token: token.jti, username: token.accountId, scopes });
  });
  const callback = provider.callback();
  return {
    handles: (path) => PREFIXES.some((p) => path === p || path.startsWith(p)),
    handle: (req, res) => callback(req, res),
  };
}
