import { describe, expect, it } from 'vitest';
import { pusherOfUserAgent } from './pushers.js';

describe('pusherOfUserAgent', () => {
  it.each([
    ['buildkit/v0.12.5', 'buildkit'],
    ['kaniko/v1.23.0', 'kaniko'],
    ['skopeo/1.9.3', 'containers'],
    ['Buildah/1.28.2', 'containers'],
    ['containers/5.29.2 (github.com/containers/image)', 'containers'],
    ['docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1.0 os/linux arch/amd64 UpstreamClient(Docker-Client/24.0.7 \\(linux\\))', 'docker'],
    ['jib 3.4.0 jib-maven-plugin Google-HTTP-Java-Client/1.42.3 (gzip)', 'jib'],
    ['ko/v0.15.1', 'ko'],
    ['crane/v0.19.0 go-containerregistry/v0.19.0', 'crane'],
    ['go-containerregistry/v0.19.0', 'crane'],
    ['tagtrail/0.1.0', 'tagtrail'],
    ['curl/8.5.0', 'other'],
    ['', 'other'],
    ['Docker-Client/24.0.7 (linux)', 'other'],
  ])('%s → %s', (ua, pusher) => {
    expect(pusherOfUserAgent(ua)).toBe(pusher);
  });
});
