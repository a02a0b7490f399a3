// Renders an import's answer ({ dryRun, plan, version }) for people and CI logs.

const SIGN = { create: '+', change: '~', delete: '-' };
const COLOR = { create: '\x1b[32m', change: '\x1b[33m', delete: '\x1b[31m' };
const RESET = '\x1b[0m';
const MAX_VALUE = 160;

/** One diff value, compact: JSON, cut when long; absent (not set) as "(unset)". */
export function showValue(value) {
  if (value === undefined) return '(unset)';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
}

/** Counts per action. */
export function summarize(plan) {
  const counts = { create: 0, change: 0, delete: 0, unchanged: 0 };
  for (const item of plan) counts[item.action] = (counts[item.action] ?? 0) + 1;
  return counts;
}

/** True when applying the plan changes something. */
export function hasChanges(plan) {
  return plan.some((i) => i.action !== 'unchanged');
}

/**
 * The plan as lines: each created, changed or deleted check by name (and id), a changed
 * check's fields as `path: before → after`; unchanged checks only counted.
 */
export function renderPlan(result, { color = false } = {}) {
  const paint = (action, text) => (color ? `${COLOR[action]}${text}${RESET}` : text);
  const lines = [];
  const counts = summarize(result.plan);
  const order = { create: 0, change: 1, delete: 2 };
  const items = result.plan
    .filter((i) => i.action !== 'unchanged')
    .sort((a, b) => order[a.action] - order[b.action] || a.name.localeCompare(b.name));
  for (const item of items) {
    const id = item.id ? `  (${item.id})` : '';
    lines.push(paint(item.action, `  ${SIGN[item.action]} ${item.action.padEnd(6)} ${item.name}${id}`));
    if (item.action === 'change')
      for (const d of item.diff ?? []) lines.push(`      ${d.path}: ${showValue(d.before)} → ${showValue(d.after)}`);
  }
  const total = `${counts.create} to create, ${counts.change} to change, ${counts.delete} to delete, ${counts.unchanged} unchanged`;
  if (result.dryRun) {
    lines.unshift(`Plan against config version ${result.version}:`);
    lines.push(hasChanges(result.plan) ? `Plan: ${total}.` : `No changes: the site matches the file (${total}).`);
  } else {
    lines.unshift(hasChanges(result.plan) ? 'Applied:' : 'Nothing to apply:');
    lines.push(
      hasChanges(result.plan)
        ? `Applied as config version ${result.version}: ${total}.`
        : `No changes: the site matches the file (config version ${result.version}).`,
    );
  }
  const pings = result.pingUrls ?? result.pingTokens;
  if (pings && Object.keys(pings).length) {
    const names = new Map(result.plan.filter((i) => i.id).map((i) => [i.id, i.name]));
    lines.push(`Ping ${result.pingUrls ? 'URLs' : 'tokens'} of the new push checks (shown this once: store them now):`);
    for (const [id, value] of Object.entries(pings)) lines.push(`  ${names.get(id) ?? id}: ${value}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * A failed answer as the lines a person needs: status and code, the message, each
 * issue naming its field, and what to do for the answers that have a remedy.
 */
export function renderError(status, body, what) {
  const error = body && typeof body === 'object' && body.error ? body.error : undefined;
  const lines = [`fleetwatch: ${what} failed: ${status}${error?.code ? ` ${error.code}` : ''}`];
  const message = error?.message ?? (typeof body === 'string' && body ? body.slice(0, 2000) : undefined);
  if (message) lines.push(`  ${message}`);
  for (const issue of error?.issues ?? []) {
    const line = `  ${issue.path}: ${issue.message}`;
    // The message often lists the issues already; do not print them twice.
    if (!message?.includes(`${issue.path}: ${issue.message}`)) lines.push(line);
  }
  if (status === 409 && error?.currentVersion !== undefined)
    lines.push(`  the site is at config version ${error.currentVersion}: export or plan again, then retry`);
  if (status === 401) lines.push('  check --token / FLEETWATCH_TOKEN / FLEETWATCH_API_KEY');
  if (status === 403) lines.push('  applying needs an operator or an API key with the `write` scope');
  return `${lines.join('\n')}\n`;
}
