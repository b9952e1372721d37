// The stand-in's signing key, and the CI ID tokens GitLab gives jobs (id_tokens), signed with it by
// jose (RS256). The same key is the one openid-provider.ts signs sign-in ID tokens with and
// publishes at /oauth/discovery/keys: GitLab is one issuer with one key set.
// https://docs.gitlab.com/ci/secrets/id_token_authentication/ (the token payload: iss, sub, aud,
// exp, iat, nbf, jti, namespace_*, project_*, user_*, pipeline_*, job_id, ref, ref_type, ref_path,
// ref_protected, runner_*, sha, ...; `sub` is project_path:{group}/{project}:ref_type:{type}:ref:{branch_name})
import { randomUUID } from 'node:crypto';
import { type CryptoKey, type JWK, SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { GitlabModel } from './model.js';

export interface IdTokenSpec {
  /** The project's full path (project_path); it must be in the model. */
  project: string;
  /** A string, or a list as a job's `id_tokens: aud:` list gives. */
  aud: string | string[];
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

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  /** The private JWK (kid, use, alg set), as oidc-provider's `jwks` configuration takes it. */
  privateJwk: JWK;
}

export async function createSigningKey(): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomUUID().replace(/-/g, '');
  return { kid, privateKey, privateJwk: { ...(await exportJWK(privateKey)), kid, use: 'sig', alg: 'RS256' } };
}

/** A CI job's ID token, as GitLab issues it, from `issuer` (the stand-in's origin). */
export async function mintIdToken(key: SigningKey, model: GitlabModel, issuer: string, spec: IdTokenSpec): Promise<string> {
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
    ci_config_ref_uri: `${new URL(issuer).host}/${project.path}//.gitlab-ci.yml@refs/heads/${spec.ref}`,
    ci_config_sha: spec.sha,
    jti: randomUUID(),
    iss: issuer,
    iat,
    nbf: iat - 5,
    exp: iat + (spec.expiresIn ?? 300),
    sub: `project_path:${project.path}:ref_type:${refType}:ref:${spec.ref}`,
    aud: spec.aud,
    ...spec.extra,
  };
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' }).sign(key.privateKey);
}
