// Every route the server answers outside the browser UI, as sub-apps with their specs. The
// OpenAPI document lists exactly these (openapi.ts); the tests compare it with hono's route table.
import { EVENTS_API } from './events.js';
import { IMAGES_API } from './images.js';
import { INSIGHTS_API } from './insights.js';
import { OPENAPI_API } from './openapi.js';
import { PROBES_API } from './probes.js';
import { REPOSITORIES_API } from './repositories.js';
import type { ApiModule } from './route.js';
import { BUILDS_API } from '../builds.js';
import { GITLAB_EVENTS_API } from '../gitlab-events.js';

export const API_MODULES: readonly ApiModule[] = [REPOSITORIES_API, IMAGES_API, INSIGHTS_API, EVENTS_API, GITLAB_EVENTS_API, BUILDS_API, OPENAPI_API, PROBES_API];
