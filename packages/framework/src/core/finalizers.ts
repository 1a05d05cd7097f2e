/**
 * Finalizer names, per scope.
 *
 * - Cluster scope: one finalizer per object, `<prefix>/finalizer` (Kopf's model).
 * - Node scope: one finalizer per instance, `<prefix>/<instanceId>`, so each node releases only its own hold and the
 *   object is deleted after the last node cleaned up.
 *
 * A finalizer must be a qualified name: an optional DNS-subdomain prefix, `/`, and a name of at most 63 characters
 * matching `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`. Node names are DNS subdomains of up to 253 characters, so an
 * instance id that does not fit is replaced by a deterministic hash: every instance computes the same name for the
 * same id, which is what lets survivors find and release the finalizer of a node that is gone.
 */
import { createHash } from 'node:crypto';

const NAME_PART = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_NAME_PART = 63;

/** The finalizer of the cluster scope. */
export function clusterFinalizer(prefix: string): string {
  return `${prefix}/finalizer`;
}

/**
 * The finalizer of one instance in node scope.
 *
 * Guarantees: deterministic; always a valid qualified name for a valid prefix; ids that are valid name parts of at
 * most 63 characters are used verbatim (readable in `kubectl get -o yaml`); other ids become `h-` + 40 hex digits of
 * their SHA-256. Ids that already look like such a hash are hashed as well, so two different ids never share a name
 * (short of a SHA-256 collision).
 */
export function instanceFinalizer(prefix: string, instanceId: string): string {
  return `${prefix}/${instanceNamePart(instanceId)}`;
}

/** The name part used for an instance id (see {@link instanceFinalizer}). */
export function instanceNamePart(instanceId: string): string {
  if (instanceId.length <= MAX_NAME_PART && NAME_PART.test(instanceId) && !HASHED.test(instanceId)) {
    return instanceId;
  }
  return `h-${createHash('sha256').update(instanceId).digest('hex').slice(0, 40)}`;
}

const HASHED = /^h-[0-9a-f]{40}$/;

/** Validates a qualified name as Kubernetes does for finalizers; returns the problems (empty when valid). */
export function qualifiedNameProblems(value: string): string[] {
  const problems: string[] = [];
  const slash = value.indexOf('/');
  const prefix = slash >= 0 ? value.slice(0, slash) : undefined;
  const name = slash >= 0 ? value.slice(slash + 1) : value;
  if (prefix !== undefined) {
    if (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)) {
      problems.push(`prefix ${JSON.stringify(prefix)} must be a DNS subdomain of at most 253 characters`);
    }
  }
  if (name.length === 0 || name.length > MAX_NAME_PART) problems.push('name part must be 1-63 characters');
  if (!NAME_PART.test(name)) problems.push(`name part ${JSON.stringify(name)} has invalid characters`);
  return problems;
}

/** Throws when `prefix` cannot prefix annotation keys and finalizers. */
export function assertValidPrefix(prefix: string): void {
  const problems = qualifiedNameProblems(`${prefix}/x`);
  if (problems.length > 0) throw new Error(`invalid persistence prefix ${JSON.stringify(prefix)}: ${problems[0]}`);
}

/** True when `finalizer` is one the framework manages under `prefix` (any instance, any scope). */
export function isOwnFinalizer(finalizer: string, prefix: string): boolean {
  return finalizer.startsWith(`${prefix}/`);
}
