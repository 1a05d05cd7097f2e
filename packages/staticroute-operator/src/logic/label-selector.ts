/**
 * Kubernetes label selectors (`matchLabels` + `matchExpressions`), evaluated the way the API machinery does:
 * all requirements must hold; an empty selector selects everything.
 */

/** One `matchExpressions` entry. */
export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

/** The standard `metav1.LabelSelector`. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

const OPERATORS = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist']);

/** Longest DNS-1123 subdomain (the optional prefix of a label key). */
export const MAX_LABEL_PREFIX_LENGTH = 253;
/** Longest label name (the part of a key after the prefix) and longest label value. */
export const MAX_LABEL_NAME_LENGTH = 63;

// The syntax the API machinery uses (k8s.io/apimachinery/pkg/util/validation). deploy/crd.yaml checks the same with
// OpenAPI `pattern`s (where the name's length limit is part of the expression) and CEL (map keys, prefix length).
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const NAME_SYNTAX = "alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character";

/**
 * Why `key` is not a label key (a qualified name: an optional DNS-1123 subdomain prefix of at most 253 characters and
 * `/`, then a name of 1-63 characters), or undefined when it is one.
 */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined) {
    if (prefix === '') return 'the prefix before "/" must not be empty';
    if (prefix.length > MAX_LABEL_PREFIX_LENGTH) {
      return `the prefix before "/" must be at most ${MAX_LABEL_PREFIX_LENGTH} characters`;
    }
    if (!DNS_SUBDOMAIN.test(prefix)) {
      return `the prefix before "/" must be a DNS subdomain: lower-case alphanumeric characters, '-' or '.' (e.g. example.com)`;
    }
  }
  if (name === '') return 'the name must not be empty';
  if (name.length > MAX_LABEL_NAME_LENGTH) return `the name must be at most ${MAX_LABEL_NAME_LENGTH} characters`;
  if (!LABEL_NAME.test(name)) {
    return `the name must consist of ${NAME_SYNTAX}${slash >= 0 ? ' (only one "/" is allowed)' : ''}`;
  }
  return undefined;
}

/** Why `value` is not a label value (empty, or 1-63 characters of the label name syntax), or undefined. */
export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > MAX_LABEL_NAME_LENGTH) return `must be at most ${MAX_LABEL_NAME_LENGTH} characters`;
  if (!LABEL_NAME.test(value)) return `must be empty or consist of ${NAME_SYNTAX}`;
  return undefined;
}

/**
 * Checks a selector's shape and syntax (label keys and values, operators and their values) and returns problems,
 * each naming the field under `path`. The CRD schema enforces the same rules; this protects against objects stored
 * before the CRD was upgraded. (The CRD's limits on the number of labels and expressions only bound the cost of its
 * rules; they are not checked here.)
 */
export function validateLabelSelector(selector: unknown, path: string): string[] {
  if (selector === undefined || selector === null) return [];
  if (typeof selector !== 'object' || Array.isArray(selector)) return [`${path}: must be a label selector object`];
  const problems: string[] = [];
  const { matchLabels, matchExpressions } = selector as Record<string, unknown>;
  if (matchLabels !== undefined) {
    if (typeof matchLabels !== 'object' || matchLabels === null || Array.isArray(matchLabels)) {
      problems.push(`${path}.matchLabels: must be a map of strings`);
    } else {
      for (const [key, value] of Object.entries(matchLabels)) {
        const keyProblem = labelKeyProblem(key);
        if (keyProblem) {
          problems.push(`${path}.matchLabels: ${JSON.stringify(key)} is not a valid label key: ${keyProblem}`);
        }
        if (typeof value !== 'string') {
          problems.push(`${path}.matchLabels.${key}: must be a string`);
          continue;
        }
        const valueProblem = labelValueProblem(value);
        if (valueProblem) {
          problems.push(
            `${path}.matchLabels.${key}: ${JSON.stringify(value)} is not a valid label value: ${valueProblem}`,
          );
        }
      }
    }
  }
  if (matchExpressions !== undefined) {
    if (!Array.isArray(matchExpressions)) {
      problems.push(`${path}.matchExpressions: must be a list`);
    } else {
      matchExpressions.forEach((expression: unknown, index) => {
        const at = `${path}.matchExpressions[${index}]`;
        if (typeof expression !== 'object' || expression === null) {
          problems.push(`${at}: must be an object`);
          return;
        }
        const { key, operator, values } = expression as Record<string, unknown>;
        if (typeof key !== 'string' || key === '') {
          problems.push(`${at}.key: must be a non-empty string`);
        } else {
          const keyProblem = labelKeyProblem(key);
          if (keyProblem) problems.push(`${at}.key: ${JSON.stringify(key)} is not a valid label key: ${keyProblem}`);
        }
        if (typeof operator !== 'string' || !OPERATORS.has(operator)) {
          problems.push(`${at}.operator: must be one of In, NotIn, Exists, DoesNotExist`);
          return;
        }
        const list = values === undefined ? [] : values;
        if (!Array.isArray(list) || list.some((value) => typeof value !== 'string')) {
          problems.push(`${at}.values: must be a list of strings`);
          return;
        }
        if ((operator === 'In' || operator === 'NotIn') && list.length === 0) {
          problems.push(`${at}.values: must be non-empty for operator ${operator}`);
        } else if ((operator === 'Exists' || operator === 'DoesNotExist') && list.length > 0) {
          problems.push(`${at}.values: must be empty for operator ${operator}`);
        }
        (list as string[]).forEach((value, valueIndex) => {
          const valueProblem = labelValueProblem(value);
          if (valueProblem) {
            problems.push(
              `${at}.values[${valueIndex}]: ${JSON.stringify(value)} is not a valid label value: ${valueProblem}`,
            );
          }
        });
      });
    }
  }
  return problems;
}

/** Whether `labels` satisfy `selector`. `undefined` selects every node. Assumes a validated selector. */
export function selectorMatches(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (!selector) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const requirement of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(labels, requirement.key);
    const value = labels[requirement.key];
    const values = requirement.values ?? [];
    switch (requirement.operator) {
      case 'In':
        if (!present || !values.includes(value as string)) return false;
        break;
      case 'NotIn':
        if (present && values.includes(value as string)) return false;
        break;
      case 'Exists':
        if (!present) return false;
        break;
      case 'DoesNotExist':
        if (present) return false;
        break;
    }
  }
  return true;
}
