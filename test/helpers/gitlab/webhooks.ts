// The webhook sender of the GitLab stand-in: Pipeline Hook and Job Hook payloads as GitLab sends
// them to project and group webhooks, with X-Gitlab-Event, X-Gitlab-Token and the other headers.
// https://docs.gitlab.com/user/project/integrations/webhook_events/#pipeline-events
// https://docs.gitlab.com/user/project/integrations/webhook_events/#job-events
// https://docs.gitlab.com/user/project/integrations/webhooks/#delivery-headers
// Job Hook payloads name the project differently from Pipeline Hook ones: `project_name` is the
// display name ("Group / Project"), `repository.homepage` the project's URL, and only newer
// versions add a `project` object with `path_with_namespace`.
import { randomUUID } from 'node:crypto';
import type { GitlabModel } from './model.js';

export interface PipelineEventSpec {
  project: string;
  pipelineId: number;
  status: 'created' | 'pending' | 'running' | 'success' | 'failed' | 'canceled' | 'skipped' | 'manual';
  sha: string;
  ref: string;
}

export interface JobEventSpec extends Omit<PipelineEventSpec, 'status'> {
  jobId: number;
  status: 'created' | 'pending' | 'running' | 'success' | 'failed' | 'canceled';
  /** Leave out the `project` object, as GitLab versions before it was added do. */
  withoutProjectObject?: boolean;
}

export interface WebhookDelivery {
  event: 'Pipeline Hook' | 'Job Hook' | 'Push Hook';
  body: Record<string, unknown>;
}

function titleCase(path: string): string {
  return path.split('/').map((s) => s.charAt(0).toUpperCase() + s.slice(1)).join(' / ');
}

function projectObject(model: GitlabModel, path: string, origin: string): Record<string, unknown> {
  const p = model.projects.get(path);
  if (!p) throw new Error(`no project ${path} in the stand-in`);
  const web = `${origin}/${p.path}`;
  return {
    id: p.id,
    name: p.path.split('/').pop(),
    description: '',
    web_url: web,
    avatar_url: null,
    git_ssh_url: `git@${new URL(origin).hostname}:${p.path}.git`,
    git_http_url: `${web}.git`,
    namespace: titleCase(p.path.slice(0, p.path.lastIndexOf('/'))),
    visibility_level: p.visibility === 'public' ? 20 : p.visibility === 'internal' ? 10 : 0,
    path_with_namespace: p.path,
    default_branch: 'main',
  };
}

export function pipelineEvent(model: GitlabModel, origin: string, spec: PipelineEventSpec): WebhookDelivery {
  const now = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  return {
    event: 'Pipeline Hook',
    body: {
      object_kind: 'pipeline',
      object_attributes: {
        id: spec.pipelineId,
        iid: spec.pipelineId % 1000,
        name: null,
        ref: spec.ref,
        tag: false,
        sha: spec.sha,
        before_sha: '0000000000000000000000000000000000000000',
        source: 'push',
        status: spec.status,
        detailed_status: spec.status === 'success' ? 'passed' : spec.status,
        stages: ['build'],
        created_at: now,
        finished_at: ['success', 'failed', 'canceled'].includes(spec.status) ? now : null,
        duration: null,
        queued_duration: null,
        variables: [],
        url: `${origin}/${spec.project}/-/pipelines/${spec.pipelineId}`,
      },
      merge_request: null,
      user: { id: 1, name: 'Administrator', username: 'root', avatar_url: '', email: '[REDACTED]' },
      project: projectObject(model, spec.project, origin),
      commit: { id: spec.sha, message: 'change', title: 'change', timestamp: new Date().toISOString(), url: `${origin}/${spec.project}/-/commit/${spec.sha}`, author: { name: 'Dev', email: '[REDACTED]' } },
      builds: [],
    },
  };
}

export function jobEvent(model: GitlabModel, origin: string, spec: JobEventSpec): WebhookDelivery {
  const project = projectObject(model, spec.project, origin);
  const now = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  return {
    event: 'Job Hook',
    body: {
      object_kind: 'build',
      ref: spec.ref,
      tag: false,
      before_sha: '0000000000000000000000000000000000000000',
      sha: spec.sha,
      build_id: spec.jobId,
      build_name: 'image',
      build_stage: 'build',
      build_status: spec.status,
      build_created_at: now,
      build_started_at: now,
      build_finished_at: ['success', 'failed', 'canceled'].includes(spec.status) ? now : null,
      build_duration: null,
      build_allow_failure: false,
      build_failure_reason: 'unknown_failure',
      pipeline_id: spec.pipelineId,
      project_id: project.id,
      project_name: titleCase(spec.project),
      user: { id: 1, name: 'Administrator', username: 'root', email: '[REDACTED]' },
      commit: { id: spec.pipelineId, sha: spec.sha, message: 'change', author_name: 'Dev', author_email: '[REDACTED]', status: spec.status },
      repository: {
        name: project.name,
        url: project.git_ssh_url,
        description: '',
        homepage: project.web_url,
        git_http_url: project.git_http_url,
        git_ssh_url: project.git_ssh_url,
        visibility_level: project.visibility_level,
      },
      ...(spec.withoutProjectObject ? {} : { project }),
      environment: null,
    },
  };
}

/** POSTs a delivery as GitLab does: JSON with X-Gitlab-Event, X-Gitlab-Token and the delivery ids. */
export async function deliver(url: string, token: string | undefined, d: WebhookDelivery, origin: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'GitLab/17.6.0',
      'x-gitlab-event': d.event,
      'x-gitlab-webhook-uuid': randomUUID(),
      'x-gitlab-event-uuid': randomUUID(),
      'x-gitlab-instance': origin,
      ...(token !== undefined ? { 'x-gitlab-token': token } : {}),
    },
    body: JSON.stringify(d.body),
  });
}
