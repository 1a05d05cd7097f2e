/**
 * Reading what the seed operator (Kopf-based) left behind, so its routes are adopted instead of duplicated.
 *
 * Kopf stores the last spec it handled in the `kopf.zalando.org/last-handled-configuration` annotation as JSON
 * (`{"spec": {...}}`). The seed installed routes with `proto static` (4) via the gateway of that spec, or of an
 * earlier one when a gateway edit was ignored (the seed's issue #23).
 */
import { sortAddresses } from './ip.js';

/** Kopf's annotation holding the last handled essence of the object. */
export const KOPF_LAST_HANDLED_ANNOTATION = 'kopf.zalando.org/last-handled-configuration';
/** Kopf's default finalizer; nothing removes it once the seed operator is gone. */
export const KOPF_FINALIZER = 'kopf.zalando.org/KopfFinalizerMarker';
/** `rtm_protocol` the seed's pyroute2 calls installed routes with (RTPROT_STATIC). */
export const SEED_ROUTE_PROTOCOL = 4;

/**
 * The next hops the seed operator last handled for this object, sorted canonically; `undefined` when the
 * annotation is absent or unreadable.
 */
export function lastHandledGateways(annotations: Readonly<Record<string, string>> | undefined): string[] | undefined {
  const raw = annotations?.[KOPF_LAST_HANDLED_ANNOTATION];
  if (!raw) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const spec = (parsed as { spec?: { gateway?: unknown; gateways?: unknown } } | null)?.spec;
  if (!spec) return undefined;
  const candidates =
    typeof spec.gateway === 'string' ? [spec.gateway] : Array.isArray(spec.gateways) ? spec.gateways : [];
  const gateways = sortAddresses(candidates.filter((value): value is string => typeof value === 'string'));
  return gateways.length > 0 ? gateways : undefined;
}

/** Index of Kopf's finalizer in the list, or -1. */
export function kopfFinalizerIndex(finalizers: readonly string[] | undefined): number {
  return finalizers ? finalizers.indexOf(KOPF_FINALIZER) : -1;
}
