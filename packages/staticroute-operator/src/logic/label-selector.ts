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

/**
 * Checks a selector's shape and returns problems, each naming the field under `path`.
 * The CRD schema enforces the same rules; this protects against objects stored before the CRD was upgraded.
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
        if (typeof value !== 'string') problems.push(`${path}.matchLabels.${key}: must be a string`);
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
        if (typeof key !== 'string' || key === '') problems.push(`${at}.key: must be a non-empty string`);
        if (typeof operator !== 'string' || !OPERATORS.has(operator)) {
          problems.push(`${at}.operator: must be one of In, NotIn, Exists, DoesNotExist`);
          return;
        }
        const list = values === undefined ? [] : values;
        if (!Array.isArray(list) || list.some((value) => typeof value !== 'string')) {
          problems.push(`${at}.values: must be a list of strings`);
        } else if ((operator === 'In' || operator === 'NotIn') && list.length === 0) {
          problems.push(`${at}.values: must be non-empty for operator ${operator}`);
        } else if ((operator === 'Exists' || operator === 'DoesNotExist') && list.length > 0) {
          problems.push(`${at}.values: must be empty for operator ${operator}`);
        }
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
