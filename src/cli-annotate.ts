// The entry of `tagtrail annotate`, the command a CI job runs on every image it builds: the
// command line with annotate and its registry client linked in. scripts/build.mjs bundles it into
// one CommonJS file, which bin/tagtrail.js loads by require for annotate, so that node reads one
// file before the first request instead of the dozen chunks the commands share, and starts no ES
// module loader. The other commands stay where they are, in the shared build.
import './commands/annotate.js';
import './net/node-http.js';

export { main } from './cli.js';
