// Which tool pushed a manifest, from the User-Agent of the push request as the registry's
// notification reports it (`request.useragent`). Pure. A push names its client directly, so this
// is stronger evidence than the config heuristics of builder.ts, but it is the pushing tool, not
// a checked report (see docs/insights.md).

export const PUSHERS = ['buildkit', 'kaniko', 'containers', 'docker', 'jib', 'ko', 'crane', 'tagtrail', 'other'] as const;
export type Pusher = (typeof PUSHERS)[number];

/** The first rule that matches wins; product tokens are compared case-insensitively. */
const RULES: readonly [RegExp, Pusher][] = [
  // BuildKit's resolver: "buildkit/v0.12.5" (also behind buildx and docker build's push=true).
  [/^buildkit\//i, 'buildkit'],
  // kaniko's executor: "kaniko/v1.23.0".
  [/^kaniko\//i, 'kaniko'],
  // containers/image (buildah, podman, skopeo): "containers/5.29.2 (github.com/containers/image)"
  // by default; skopeo names itself ("skopeo/1.9.3"), podman as libpod.
  [/^(?:containers|skopeo|buildah|podman|libpod)\//i, 'containers'],
  // The Docker engine: "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/… os/linux arch/amd64 UpstreamClient(…)".
  [/^docker\//i, 'docker'],
  // Jib: "jib 3.4.0 jib-maven-plugin Google-HTTP-Java-Client/…".
  [/^jib[ /]/i, 'jib'],
  [/^ko\//i, 'ko'],
  // go-containerregistry's default (crane and tools built on it): "crane/v0.19.0 go-containerregistry/v0.19.0".
  [/^(?:crane|go-containerregistry)\//i, 'crane'],
  [/^tagtrail\//i, 'tagtrail'],
];

export function pusherOfUserAgent(userAgent: string): Pusher {
  const ua = userAgent.trim();
  for (const [re, pusher] of RULES) if (re.test(ua)) return pusher;
  return 'other';
}
