import { AsyncLocalStorage, AsyncResource, executionAsyncId } from 'node:async_hooks';
import { installLeanAsyncResourceBind, leanAsyncResourceBind } from './async-resource-bind';

const nativeBind = AsyncResource.prototype.bind;

afterEach(() => {
  AsyncResource.prototype.bind = nativeBind;
});

// Core modules are shared by the test files of a Jest worker: a spec that runs bootstrapService before this
// one and leaves the lean bind installed would make every "native" comparison below lean against lean.
it('compares with Node’s own bind (no earlier spec in this worker left the lean one installed)', () => {
  expect(nativeBind.name).toBe('bind');
});

/** Binds with `bind` as a method of a fresh resource (the way Fastify calls it). */
type Fn = (...args: unknown[]) => unknown;
function bindWith(bind: unknown, resource: AsyncResource, fn: unknown, thisArg?: unknown): Fn {
  return (bind as (this: AsyncResource, fn: unknown, thisArg?: unknown) => Fn).call(resource, fn, thisArg);
}

describe('leanAsyncResourceBind', () => {
  const storage = new AsyncLocalStorage<string>();

  it.each([
    ['native', nativeBind],
    ['lean', leanAsyncResourceBind as unknown as typeof nativeBind],
  ])('%s: runs fn in the async context of the resource, not of the caller', (_name, bind) => {
    const resource = storage.run('at-bind', () => new AsyncResource('test'));
    const bound = bindWith(bind, resource, () => [storage.getStore(), executionAsyncId()]);
    const [store, id] = storage.run('at-call', () => bound()) as [string, number];
    expect(store).toBe('at-bind');
    expect(id).toBe(resource.asyncId());
    // With a thisArg the bound function is built differently: it must keep the resource's scope too.
    const receiver = {};
    const withThis = bindWith(
      bind,
      resource,
      function (this: unknown) {
        return [storage.getStore(), executionAsyncId(), this];
      },
      receiver,
    );
    expect(storage.run('at-call', () => withThis())).toEqual(['at-bind', resource.asyncId(), receiver]);
  });

  it('behaves as the native bind: this, arguments, return value, thrown errors, length', () => {
    for (const bind of [nativeBind, leanAsyncResourceBind as unknown as typeof nativeBind]) {
      const resource = new AsyncResource('test');
      function f(this: unknown, a: number, b: number) {
        return { self: this, sum: a + b };
      }
      const receiver = { name: 'receiver' };
      const unbound = bindWith(bind, resource, f as never);
      expect(unbound.length).toBe(2);
      expect(unbound.name).toBe(bindWith(nativeBind, resource, f as never).name);
      expect(unbound.call(receiver, 1, 2)).toEqual({ self: receiver, sum: 3 });
      const withThis = bindWith(bind, resource, f as never, receiver);
      expect(withThis.length).toBe(2);
      expect(withThis.call({ other: true }, 2, 3)).toEqual({ self: receiver, sum: 5 });
      const boom = bindWith(bind, resource, (() => {
        throw new RangeError('boom');
      }) as never);
      expect(() => boom()).toThrow(RangeError);
      expect(() => bindWith(bind, resource, 42 as never)).toThrow(/"fn" argument must be of type function/);
    }
  });
});

describe('installLeanAsyncResourceBind', () => {
  it('replaces a bind that defines the deprecated asyncResource accessor, once', () => {
    const native = new AsyncResource('probe').bind(() => undefined);
    const nativeHasAccessor = Object.getOwnPropertyDescriptor(native, 'asyncResource') !== undefined;
    expect(installLeanAsyncResourceBind()).toBe(nativeHasAccessor);
    expect(installLeanAsyncResourceBind()).toBe(nativeHasAccessor);
    if (!nativeHasAccessor) return expect(AsyncResource.prototype.bind).toBe(nativeBind);
    expect(AsyncResource.prototype.bind).toBe(leanAsyncResourceBind);
    const bound = new AsyncResource('after').bind(() => 'ok');
    expect(Object.getOwnPropertyDescriptor(bound, 'asyncResource')).toBeUndefined();
    expect(bound()).toBe('ok');
    // The static helper goes through the prototype's bind.
    expect(AsyncResource.bind(() => 'static')()).toBe('static');
  });

  it('leaves a runtime whose bind has no deprecated accessor alone', () => {
    const plain = function (this: AsyncResource, fn: (...a: unknown[]) => unknown) {
      return leanAsyncResourceBind.call(this, fn);
    };
    AsyncResource.prototype.bind = plain as never;
    expect(installLeanAsyncResourceBind()).toBe(false);
    expect(AsyncResource.prototype.bind).toBe(plain);
  });
});
