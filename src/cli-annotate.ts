// The entry of `tagtrail annotate`, the command a CI job runs on every image it builds
// (bin/tagtrail.js picks it): the command line with annotate and its registry client linked in,
// so that the bundle (scripts/build.mjs) loads one file before the first request instead of the
// dozen chunks the commands share. The other commands stay where they are, loaded on demand.
import './commands/annotate.js';
import './net/node-http.js';

export { main } from './cli.js';
