// The one place that decides which annotations a run stamps: the CI set, then --annotation
// overrides, minus --remove-annotation. `annotate` and `flags` both use it, so a born-annotated
// build and an annotated-after-push image carry the same keys.
import { type AnnotationChanges, type Annotations, emptyAnnotations, parseAnnotationArg, validateAnnotationKey } from '../oci/annotations.js';
import { type Env, assertNoSecrets, ciAnnotations } from './ci.js';

interface AnnotationSetInput {
  readonly env: Env;
  readonly now: Date;
  /** KEY=VALUE strings from --annotation. */
  readonly annotations?: readonly string[];
  /** Keys from --remove-annotation. */
  readonly remove?: readonly string[];
  /** false with --no-ci. */
  readonly ci?: boolean;
}

export function annotationChanges(input: AnnotationSetInput): AnnotationChanges {
  const ci = input.ci === false ? { set: emptyAnnotations(), setIfAbsent: emptyAnnotations() } : ciAnnotations(input.env, input.now);
  const set: Annotations = emptyAnnotations();
  Object.assign(set, ci.set);
  const setIfAbsent: Annotations = emptyAnnotations();
  Object.assign(setIfAbsent, ci.setIfAbsent);
  for (const arg of input.annotations ?? []) {
    const [k, v] = parseAnnotationArg(arg);
    set[k] = v;
    // An explicit value overrides even a key that is otherwise kept once set (the creation time).
    delete setIfAbsent[k];
  }
  const remove = [...(input.remove ?? [])];
  for (const k of remove) {
    validateAnnotationKey(k);
    delete set[k];
    delete setIfAbsent[k];
  }
  assertNoSecrets(set, input.env);
  return { set, setIfAbsent, remove };
}

/** The flat set a builder should write at build time (nothing exists yet, so setIfAbsent applies). */
export function annotationSet(input: AnnotationSetInput): Annotations {
  const c = annotationChanges(input);
  const out = emptyAnnotations();
  const keys = [...new Set([...Object.keys(c.set), ...Object.keys(c.setIfAbsent ?? {})])].sort();
  for (const k of keys) out[k] = (c.set[k] ?? c.setIfAbsent?.[k]) as string;
  return out;
}
