/**
 * The API client as handlers see it (`ctx.api`): the runtime's client, with `replace`, `apply` and `isNotFound`
 * always present. The client `runOperators` creates has them; a custom `settings.api` may not (they are optional in
 * `KubeApi`), and then calling them fails with an error that says so, instead of `ctx.api.replace` being undefined.
 */
import { forwardingApi, isNotFound, type KubeApi } from '../kube/types.js';
import type { HandlerApi } from './context.js';

const wrapped = new WeakMap<KubeApi, HandlerApi>();

/** `api` as a {@link HandlerApi}: itself when it is complete, else a wrapper (one per client). */
export function handlerApi(api: KubeApi): HandlerApi {
  if (isComplete(api)) return api;
  let view = wrapped.get(api);
  if (!view) wrapped.set(api, (view = wrap(api)));
  return view;
}

function isComplete(api: KubeApi): api is HandlerApi {
  const candidate = api as Partial<HandlerApi>;
  return (
    typeof candidate.replace === 'function' &&
    typeof candidate.apply === 'function' &&
    typeof candidate.isNotFound === 'function'
  );
}

function wrap(api: KubeApi): HandlerApi {
  const missing = (verb: string): Promise<never> =>
    Promise.reject(new Error(`ctx.api.${verb}: the runtime's API client (settings.api) does not implement ${verb}`));
  const verbs = forwardingApi(api, {
    replace: (...args) => (api.replace ? api.replace(...args) : missing('replace')),
    apply: (...args) => (api.apply ? api.apply(...args) : missing('apply')),
  });
  return Object.assign(verbs, { isNotFound }) as HandlerApi;
}
