// Which requests carry their own credentials: the registry webhook, and the machine endpoints
// other parts of serve add beside it (build reports, GitLab events). They keep their own shared
// secrets or ID tokens, so neither sign-in nor the Host check stands in their way: a registry
// often posts to an internal name (http://tagtrail:8080) that is neither the public host nor
// loopback, and a page elsewhere that reaches one through DNS rebinding still lacks the secret.
const MACHINE_ENDPOINTS: readonly string[] = ['/api/v1/events', '/api/v1/builds', '/api/v1/gitlab/events'];

export function isMachineEndpoint(method: string, path: string): boolean {
  return method === 'POST' && MACHINE_ENDPOINTS.some((p) => path === p || path.startsWith(`${p}/`));
}

/** Probes answer for anyone who may reach serve: they reveal nothing about the catalog. */
export function isProbe(path: string): boolean {
  return path === '/healthz' || path === '/readyz';
}
