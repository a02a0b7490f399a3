import { AsyncResource } from 'node:async_hooks';

type Fn = (...args: unknown[]) => unknown;
type Bind = (this: AsyncResource, fn: Fn, thisArg?: unknown) => Fn;

/**
 * `AsyncResource.prototype.bind` as Node 20 has it, minus the deprecated `asyncResource`
 * accessor (DEP0172).
 *
 * Why (issue 14): Fastify runs every request body through `new AsyncResource(…).bind(onDone)`
 * (its content-type parser). Node 20's bind defines the deprecated accessor with two fresh
 * `util.deprecate` wrappers per call, and `deprecate` makes each wrapper's prototype the
 * wrapped function (`Object.setPrototypeOf`): ~13 µs per call on the reference box; at saturation
 * status-ingest served about a fifth more single-update POSTs per CPU second with this bind
 * (docs/benchmarks.md, "Fourth pass"). The bound function behaves the same:
 * it calls `fn` inside the resource's async scope (`runInAsyncScope`), with the caller's `this`
 * (or `thisArg` when given) and arguments, and has `fn`'s `length` and the native `name`; only the deprecated
 * `bound.asyncResource` property is gone (nothing in this project or its dependencies reads it).
 */
export function leanAsyncResourceBind(this: AsyncResource, fn: Fn, thisArg?: unknown): Fn {
  return boundTo(this, fn, thisArg);
}

function boundTo(resource: AsyncResource, fn: Fn, thisArg: unknown): Fn {
  if (typeof fn !== 'function')
    throw Object.assign(new TypeError('The "fn" argument must be of type function'), { code: 'ERR_INVALID_ARG_TYPE' });
  const bound: Fn =
    thisArg === undefined
      ? function bound(this: unknown, ...args: unknown[]) {
          return resource.runInAsyncScope(fn, this, ...args);
        }
      : resource.runInAsyncScope.bind(resource, fn, thisArg);
  Object.defineProperty(bound, 'length', { configurable: true, enumerable: false, value: fn.length, writable: false });
  return bound;
}

/**
 * Replaces `AsyncResource.prototype.bind` with `leanAsyncResourceBind` where the runtime's
 * bind defines the deprecated `asyncResource` accessor (Node 20); a runtime without it is left
 * alone. Idempotent. Returns whether the lean bind is in place.
 */
export function installLeanAsyncResourceBind(): boolean {
  const proto = AsyncResource.prototype as unknown as { bind: Bind };
  if (proto.bind === (leanAsyncResourceBind as Bind)) return true;
  const probe = new AsyncResource('fleetwatch:bind-probe').bind(() => undefined);
  if (Object.getOwnPropertyDescriptor(probe, 'asyncResource') === undefined) return false;
  proto.bind = leanAsyncResourceBind as Bind;
  return true;
}
