/**
 * Appends a hook to a route option that holds none, one or several. Used from
 * `onRoute` hooks so a hook runs only on the routes it concerns: a hook
 * added with `app.addHook` costs every request of every route.
 */
export function withHook<T>(hooks: T | T[] | undefined, hook: T): T[] {
  if (hooks === undefined) return [hook];
  return Array.isArray(hooks) ? [...hooks, hook] : [hooks, hook];
}
