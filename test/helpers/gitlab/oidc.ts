// OIDC of the GitLab stand-in: the discovery document, the signing keys, and CI ID tokens signed
// with them (jose: RS256).
// https://docs.gitlab.com/ci/secrets/id_token_authentication/ (the token payload: iss, sub, aud,
// exp, iat, nbf, jti, namespace_*, project_*, user_*, pipeline_*, job_id, ref, ref_type, ref_path,
// ref_protected, runner_*, sha, ...; `sub` is project_path:{group}/{project}:ref_type:{type}:ref:{branch_name})
// https://docs.gitlab.com/integration/openid_connect_provider/ (/.well-known/openid-configuration;
// on GitLab.com jwks_uri is https://gitlab.com/oauth/discovery/keys)
import { randomUUID } from 'node:crypto';
import { type CryptoKey, type JWK, SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { GitlabModel } from './model.js';
import type { Router } from './router.js';

export interface IdTokenSpec {
  /** The project's full path (project_path); it must be in the model. */
  project: string;
  aud: string;
  pipelineId: number | string;
  jobId: number | string;
  sha: string;
  ref: string;
  refType?: 'branch' | 'tag';
  user?: string;
  /** Seconds of life (GitLab's default is 5 minutes unless the job's timeout says more). */
  expiresIn?: number;
  /** The token's iat; default now. */
  issuedAt?: Date;
  /** Claims to override or add (a test of a wrong issuer, a forged key, ...). */
  extra?: Record<string, unknown>;
}

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

export interface Oidc {
  issueIdToken(spec: IdTokenSpec): Promise<string>;
  /** A new signing key, published beside the old ones (as GitLab rotates). */
  rotateKey(): Promise<string>;
  /** The key id tokens are signed with now. */
  currentKid(): string;
}

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = randomUUID().replace(/-/g, '');
  return { kid, privateKey, jwk: { ...jwk, kid, use: 'sig', alg: 'RS256' } };
}

export async function registerOidcRoutes(router: Router, model: GitlabModel, origin: () => string): Promise<Oidc> {
  const keys: SigningKey[] = [await newKey()];
  const current = (): SigningKey => keys[keys.length - 1] as SigningKey;

  router.get(/^\/\.well-known\/openid-configuration$/, () => ({
    status: 200,
    body: {
      issuer: origin(),
      authorization_endpoint: `${origin()}/oauth/authorize`,
      token_endpoint: `${origin()}/oauth/token`,
      revocation_endpoint: `${origin()}/oauth/revoke`,
      introspection_endpoint: `${origin()}/oauth/introspect`,
      userinfo_endpoint: `${origin()}/oauth/userinfo`,
      jwks_uri: `${origin()}/oauth/discovery/keys`,
      scopes_supported: ['api', 'read_api', 'read_user', 'openid', 'profile', 'email'],
      response_types_supported: ['code'],
      response_modes_supported: ['query', 'fragment', 'form_post'],
      grant_types_supported: ['authorization_code', 'password', 'client_credentials', 'refresh_token'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      claim_types_supported: ['normal'],
      claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'sub_legacy', 'name', 'nickname', 'preferred_username', 'email', 'email_verified', 'website', 'profile', 'picture', 'groups', 'groups_direct'],
    },
  }));
  router.get(/^\/oauth\/discovery\/keys$/, () => ({ status: 200, body: { keys: keys.map((k) => k.jwk) } }));

  return {
    currentKid: () => current().kid,
    rotateKey: async () => {
      keys.push(await newKey());
      return current().kid;
    },
    issueIdToken: async (spec) => {
      const project = model.projects.get(spec.project);
      if (!project) throw new Error(`no project ${spec.project} in the stand-in`);
      const namespace = spec.project.slice(0, spec.project.lastIndexOf('/'));
      const user = model.users.get(spec.user ?? '') ?? [...model.users.values()][0];
      const refType = spec.refType ?? 'branch';
      const iat = Math.floor((spec.issuedAt ?? new Date()).getTime() / 1000);
      const claims: Record<string, unknown> = {
        namespace_id: String(model.groups.get(namespace)?.id ?? 0),
        namespace_path: namespace,
        project_id: String(project.id),
        project_path: project.path,
        user_id: String(user?.id ?? 1),
        user_login: user?.username ?? 'root',
        user_email: `${user?.username ?? 'root'}@example.com`,
        user_access_level: 'developer',
        pipeline_id: String(spec.pipelineId),
        pipeline_source: 'push',
        job_id: String(spec.jobId),
        ref: spec.ref,
        ref_type: refType,
        ref_path: `refs/${refType === 'branch' ? 'heads' : 'tags'}/${spec.ref}`,
        ref_protected: 'true',
        runner_id: 1,
        runner_environment: 'self-hosted',
        sha: spec.sha,
        project_visibility: project.visibility,
        ci_config_ref_uri: `${new URL(origin()).host}/${project.path}//.gitlab-ci.yml@refs/heads/${spec.ref}`,
        ci_config_sha: spec.sha,
        jti: randomUUID(),
        iss: origin(),
        iat,
        nbf: iat - 5,
        exp: iat + (spec.expiresIn ?? 300),
        sub: `project_path:${project.path}:ref_type:${refType}:ref:${spec.ref}`,
        aud: spec.aud,
        ...spec.extra,
      };
      const key = current();
      return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' }).sign(key.privateKey);
    },
  };
}
