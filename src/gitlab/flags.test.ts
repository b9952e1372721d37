import { describe, expect, it } from 'vitest';
import { InvalidInputError, UsageError, exitCodeFor } from '../errors.js';
import { toAnnotations } from '../oci/annotations.js';
import {
  BUILDX_LEVELS,
  annotationsJson,
  builderArgs,
  dotenvName,
  dotenvReport,
  frame,
  nulTerminated,
  oneArgPerLine,
  parseBuildxLevels,
  shellQuote,
  shellWords,
} from './flags.js';
import { DEFAULT_DOTENV_MAX_VARIABLES, DOTENV_MAX_BYTES } from './dotenv.js';
import { parseAsGitLab } from '../../test/helpers/gitlab-dotenv.js';

const LIMITS = { maxVariables: DEFAULT_DOTENV_MAX_VARIABLES, maxBytes: DOTENV_MAX_BYTES };

const SET = toAnnotations([
  ['com.gitlab.ci.pipeline_id', '1001'],
  ['com.gitlab.ci.job_name', 'build image'],
]);

describe('builderArgs', () => {
  it('writes buildx flags with the levels before the key', () => {
    expect(builderArgs(SET, 'buildx', ['index', 'manifest'])).toEqual([
      '--annotation',
      'index,manifest:com.gitlab.ci.pipeline_id=1001',
      '--annotation',
      'index,manifest:com.gitlab.ci.job_name=build image',
    ]);
    expect(builderArgs(SET, 'buildx', ['manifest'])[1]).toBe('manifest:com.gitlab.ci.pipeline_id=1001');
  });

  it('writes buildah and podman annotations and docker/kaniko labels as KEY=VALUE', () => {
    expect(builderArgs(SET, 'buildah')).toEqual(['--annotation', 'com.gitlab.ci.pipeline_id=1001', '--annotation', 'com.gitlab.ci.job_name=build image']);
    expect(builderArgs(SET, 'podman')).toEqual(builderArgs(SET, 'buildah'));
    expect(builderArgs(SET, 'labels')).toEqual(['--label', 'com.gitlab.ci.pipeline_id=1001', '--label', 'com.gitlab.ci.job_name=build image']);
  });

  it('gives nothing for an empty set', () => {
    expect(builderArgs(toAnnotations([]), 'buildx')).toEqual([]);
    expect(shellWords([])).toBe('');
    expect(nulTerminated([])).toBe('');
  });
});

describe('parseBuildxLevels', () => {
  it('accepts the four buildx levels, trims, and drops repeats', () => {
    expect(parseBuildxLevels('index,manifest')).toEqual(['index', 'manifest']);
    expect(parseBuildxLevels(' manifest , index ,manifest')).toEqual(['manifest', 'index']);
    expect(parseBuildxLevels(BUILDX_LEVELS.join(','))).toEqual([...BUILDX_LEVELS]);
  });

  it.each(['', ',', 'index,', 'manifests', 'Index', 'index;manifest', 'manifest[linux/amd64]'])('refuses %j as a usage error', (spec) => {
    expect(() => parseBuildxLevels(spec)).toThrow(UsageError);
    try {
      parseBuildxLevels(spec);
    } catch (err) {
      expect(exitCodeFor(err as UsageError)).toBe(2);
      expect((err as UsageError).hint).toContain('manifest, index, manifest-descriptor, index-descriptor');
    }
  });
});

describe('shellQuote', () => {
  it('leaves plain words bare', () => {
    expect(shellQuote('--annotation')).toBe('--annotation');
    expect(shellQuote('index,manifest:com.gitlab.ci.pipeline_id=1001')).toBe('index,manifest:com.gitlab.ci.pipeline_id=1001');
    expect(shellQuote('https://gitlab.example.com/g/app/-/jobs/7')).toBe('https://gitlab.example.com/g/app/-/jobs/7');
  });

  it('single-quotes everything else', () => {
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('$(rm -rf /)')).toBe("'$(rm -rf /)'");
    expect(shellQuote('`id`')).toBe("'`id`'");
    expect(shellQuote('a\nb')).toBe("'a\nb'");
    expect(shellQuote('~root')).toBe("'~root'");
    expect(shellQuote('=cmd')).toBe("'=cmd'");
    expect(shellQuote('x*')).toBe("'x*'");
    expect(shellQuote('ü')).toBe("'ü'");
  });

  it('puts every word on one line, so set -- takes them all', () => {
    expect(shellWords(['--label', 'a.b=x\ny'])).toBe("--label 'a.b=x\ny'\n");
    expect(shellWords(['--label', 'a.b=1', '--label', 'a.c=2']).split('\n').filter(Boolean)).toHaveLength(1);
  });
});

describe('framings', () => {
  const hostile = toAnnotations([['com.example.text', 'line one\nline two']]);

  it('ends each raw argument with NUL', () => {
    expect(nulTerminated(['--label', 'a.b=x\ny'])).toBe('--label\0a.b=x\ny\0');
  });

  it('puts one raw argument on each line, and refuses a value with a line break', () => {
    expect(oneArgPerLine(['--label', 'a.b=c d'], toAnnotations([['a.b', 'c d']]))).toBe('--label\na.b=c d\n');
    expect(() => oneArgPerLine(builderArgs(hostile, 'labels'), hostile)).toThrow(InvalidInputError);
    expect(() => frame(builderArgs(hostile, 'labels'), toAnnotations([['com.example.cr', 'a\rb']]), 'lines')).toThrow(/line break/);
    expect(frame(builderArgs(hostile, 'labels'), hostile, 'nul')).toBe('--label\0com.example.text=line one\nline two\0');
  });
});

describe('dotenv', () => {
  it('names variables after the key, upper-cased, with _ for everything but letters and digits', () => {
    expect(dotenvName('com.gitlab.ci.pipeline_id')).toBe('TAGTRAIL_ANNOTATION_COM_GITLAB_CI_PIPELINE_ID');
    expect(dotenvName('org.opencontainers.image.created')).toBe('TAGTRAIL_ANNOTATION_ORG_OPENCONTAINERS_IMAGE_CREATED');
    expect(dotenvName('io.example-corp.Build-Host')).toBe('TAGTRAIL_ANNOTATION_IO_EXAMPLE_CORP_BUILD_HOST');
    expect(dotenvName('com.gitlab.ci.pipeline_id')).toMatch(/^[A-Za-z0-9_]+$/);
  });

  it('writes values as they are: GitLab neither unquotes nor expands them', () => {
    const r = dotenvReport(toAnnotations([['com.example.q', `"quoted" 'x' $HOME a=b #c`]]), LIMITS);
    expect(r.text).toBe(`TAGTRAIL_ANNOTATION_COM_EXAMPLE_Q="quoted" 'x' $HOME a=b #c\n`);
    expect(r.warnings).toEqual([]);
    expect(parseAsGitLab(r.text).get('TAGTRAIL_ANNOTATION_COM_EXAMPLE_Q')).toBe(`"quoted" 'x' $HOME a=b #c`);
  });

  it('writes nothing at all for an empty set (GitLab refuses empty lines)', () => {
    expect(dotenvReport(toAnnotations([]), LIMITS).text).toBe('');
  });

  it('refuses a value with a line break', () => {
    expect(() => dotenvReport(toAnnotations([['com.example.m', 'a\nb']]), LIMITS)).toThrow(/line break/);
  });

  it('refuses two keys that become one variable', () => {
    expect(() => dotenvReport(toAnnotations([['com.example.a-b', '1'], ['com.example.a_b', '2']]), LIMITS)).toThrow(/both become the variable TAGTRAIL_ANNOTATION_COM_EXAMPLE_A_B/);
  });

  it('warns where GitLab would strip spaces', () => {
    expect(dotenvReport(toAnnotations([['com.example.s', ' padded ']]), LIMITS).warnings.join()).toMatch(/strips the spaces/);
  });

  it('keeps within the variable limit: --annotation keys first, then the CI keys most useful first, and names the rest', () => {
    const ci = [
      'com.gitlab.ci.user_id',
      'org.opencontainers.image.url',
      'com.gitlab.ci.pipeline_id',
      'com.gitlab.ci.pipeline_url',
      'com.gitlab.ci.commit_sha',
      'com.gitlab.ci.job_url',
    ].map((k) => [k, '1'] as const);
    const set = toAnnotations([...ci, ['com.example.team', 'pay']]);
    const r = dotenvReport(set, { maxVariables: 4, maxBytes: DOTENV_MAX_BYTES });
    expect([...parseAsGitLab(r.text, { maxVariables: 4, maxBytes: DOTENV_MAX_BYTES }).keys()]).toEqual([
      'TAGTRAIL_ANNOTATION_COM_EXAMPLE_TEAM',
      'TAGTRAIL_ANNOTATION_COM_GITLAB_CI_PIPELINE_URL',
      'TAGTRAIL_ANNOTATION_COM_GITLAB_CI_PIPELINE_ID',
      'TAGTRAIL_ANNOTATION_COM_GITLAB_CI_COMMIT_SHA',
    ]);
    expect(r.leftOut).toEqual(['TAGTRAIL_ANNOTATION_COM_GITLAB_CI_JOB_URL', 'TAGTRAIL_ANNOTATION_COM_GITLAB_CI_USER_ID', 'TAGTRAIL_ANNOTATION_ORG_OPENCONTAINERS_IMAGE_URL']);
    expect(r.warnings.join()).toContain('left out: TAGTRAIL_ANNOTATION_COM_GITLAB_CI_JOB_URL, TAGTRAIL_ANNOTATION_COM_GITLAB_CI_USER_ID');
  });

  it('keeps within 5 KiB, still taking a smaller variable after one that did not fit', () => {
    const set = toAnnotations([...Array.from({ length: 6 }, (_, i) => [`com.example.k${i}`, 'x'.repeat(1000)] as const), ['com.example.small', 'y']]);
    const r = dotenvReport(set, LIMITS);
    expect(Buffer.byteLength(r.text)).toBeLessThanOrEqual(DOTENV_MAX_BYTES);
    expect(r.leftOut).toEqual(['TAGTRAIL_ANNOTATION_COM_EXAMPLE_K4', 'TAGTRAIL_ANNOTATION_COM_EXAMPLE_K5']);
    expect(parseAsGitLab(r.text).get('TAGTRAIL_ANNOTATION_COM_EXAMPLE_SMALL')).toBe('y');
  });
});

describe('json', () => {
  it('is a flat object of the annotations', () => {
    expect(JSON.parse(annotationsJson(SET))).toEqual({ 'com.gitlab.ci.pipeline_id': '1001', 'com.gitlab.ci.job_name': 'build image' });
  });
});
