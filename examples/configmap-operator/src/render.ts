/**
 * The template language of `ConfigTemplate.spec.data`: plain text with `{{ name }}` placeholders, each replaced by
 * `spec.values[name]`. Pure functions only, so every rule is unit-tested without a cluster.
 *
 * Rules (deliberately small; this is an example, not a template engine):
 * - A placeholder is `{{`, optional spaces, a name (`[A-Za-z_][A-Za-z0-9_]*`), optional spaces, `}}`.
 * - Every placeholder must name a defined value; an unknown name, an empty or malformed name and an unclosed `{{`
 *   are errors. All problems of all keys are reported at once, so one edit can fix them all.
 * - Values are inserted verbatim: a value that itself contains `{{ x }}` is not expanded again (no recursion, no
 *   injection of placeholders through values).
 * - There is no escape for a literal `{{`; a lone `}}` is plain text.
 * - The rendered data must fit in a ConfigMap (the API refuses more than 1 MiB of data), which is checked here so
 *   that the failure is reported as an invalid template rather than as an opaque API error.
 */

/** The largest total size of a ConfigMap's keys and values that the API server accepts (bytes). */
export const MAX_CONFIGMAP_DATA_BYTES = 1024 * 1024;

/** What a placeholder name looks like. Also enforced for `spec.values` keys by the CRD. */
export const VALUE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One reason why a template cannot be rendered. */
export interface TemplateProblem {
  /** The `spec.data` key whose template has the problem (`undefined` for problems of the whole result). */
  key?: string;
  /** 0-based character offset of the offending `{{` in the template, when there is one. */
  offset?: number;
  message: string;
}

/** The outcome of rendering: the data, or every problem found. */
export type RenderResult = { ok: true; data: Record<string, string> } | { ok: false; problems: TemplateProblem[] };

/**
 * Renders one template. Returns the text, or the problems found (each with its offset; `key` left unset).
 *
 * @example
 * ```ts
 * renderTemplate('port={{ port }}', { port: '8080' }); // { ok: true, text: 'port=8080' }
 * ```
 */
export function renderTemplate(
  template: string,
  values: Readonly<Record<string, string>>,
): { ok: true; text: string } | { ok: false; problems: TemplateProblem[] } {
  const problems: TemplateProblem[] = [];
  let text = '';
  let position = 0;
  for (;;) {
    const open = template.indexOf('{{', position);
    if (open < 0) break;
    text += template.slice(position, open);
    const close = template.indexOf('}}', open + 2);
    if (close < 0) {
      problems.push({ offset: open, message: "'{{' is never closed with '}}'" });
      position = template.length;
      break;
    }
    const name = template.slice(open + 2, close).trim();
    if (name === '') {
      problems.push({ offset: open, message: 'empty placeholder' });
    } else if (!VALUE_NAME.test(name)) {
      problems.push({ offset: open, message: `invalid placeholder name ${JSON.stringify(name)}` });
    } else if (!Object.hasOwn(values, name)) {
      // hasOwn, not `in`: a name like `constructor` must not resolve to something from Object.prototype.
      problems.push({ offset: open, message: `no value named ${JSON.stringify(name)} in spec.values` });
    } else {
      text += values[name];
    }
    position = close + 2;
  }
  text += template.slice(position);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, text };
}

/**
 * Renders every template of `spec.data` (keys in sorted order, so that problem lists are stable) and checks that
 * the result fits in a ConfigMap.
 */
export function renderAll(
  data: Readonly<Record<string, string>>,
  values: Readonly<Record<string, string>>,
): RenderResult {
  const problems: TemplateProblem[] = [];
  const rendered: Record<string, string> = {};
  for (const key of Object.keys(data).sort()) {
    const result = renderTemplate(data[key] as string, values);
    if (result.ok) rendered[key] = result.text;
    else problems.push(...result.problems.map((problem) => ({ ...problem, key })));
  }
  if (problems.length === 0) {
    const size = dataSize(rendered);
    if (size > MAX_CONFIGMAP_DATA_BYTES) {
      problems.push({
        message: `rendered data is ${size} bytes; a ConfigMap holds at most ${MAX_CONFIGMAP_DATA_BYTES}`,
      });
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, data: rendered };
}

/** Size of a ConfigMap's data as the API server counts it: UTF-8 bytes of every key and value. */
export function dataSize(data: Readonly<Record<string, string>>): number {
  let size = 0;
  for (const [key, value] of Object.entries(data)) size += Buffer.byteLength(key) + Buffer.byteLength(value);
  return size;
}

/** One line for status, events and errors, e.g. `data[app.conf] at 12: no value named "port" in spec.values`. */
export function describeProblems(problems: readonly TemplateProblem[]): string {
  return problems
    .map((problem) => {
      const where = problem.key === undefined ? '' : `data[${problem.key}]`;
      const at = problem.offset === undefined ? '' : `at ${problem.offset}`;
      const location = [where, at].filter(Boolean).join(' ');
      return location ? `${location}: ${problem.message}` : problem.message;
    })
    .join('; ');
}
