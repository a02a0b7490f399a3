// Arguments of `npm run fleetwatch -- <group> <command> [file] [options]`.

export const USAGE = `Usage: npm run fleetwatch -- <command> [options]

Commands:
  config plan FILE.yaml     show what importing FILE would change (a dry run; a read key is enough)
  config apply FILE.yaml    import FILE as one config version and show what changed (operator / write key)
  config export             print the site's configuration as YAML (or write it with --output)

Options:
  --url URL                 gateway base URL (env FLEETWATCH_URL; default http://127.0.0.1:3000)
  --token TOKEN             session token or API key (env FLEETWATCH_TOKEN or FLEETWATCH_API_KEY)
  --dry-run                 apply: only plan (same as config plan)
  --no-prune                apply/plan: keep checks that are not in the file (default: delete them)
  --if-match VERSION        apply/plan: refuse (409) unless the site is still at this config version
  --output FILE             export: write the YAML to FILE instead of stdout
  --detailed-exitcode       plan/apply: exit 2 when the plan has changes (0: none, 1: failure)
  --json                    print the server's JSON answer instead of the rendered plan
  --timeout SECONDS         give up on the gateway after this long (default 60)
  -h, --help                this text

Exit codes: 0 success, 1 failure (the server's message on stderr), 2 changes (--detailed-exitcode), 64 bad usage.`;

export class UsageError extends Error {}

const VALUE_OPTIONS = new Set(['url', 'token', 'if-match', 'output', 'timeout']);
const FLAG_OPTIONS = new Set(['dry-run', 'no-prune', 'detailed-exitcode', 'json', 'help']);

/**
 * Parses argv (without `node` and the script) and the environment into one command.
 * Throws UsageError with the reason on anything it does not understand.
 */
export function parseCommand(argv, env = {}) {
  const positional = [];
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h') {
      options.help = true;
      continue;
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) {
      if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
      positional.push(arg);
      continue;
    }
    const [, name, inline] = m;
    if (FLAG_OPTIONS.has(name)) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      options[name] = true;
    } else if (VALUE_OPTIONS.has(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined || (inline === undefined && value.startsWith('--')))
        throw new UsageError(`--${name} needs a value`);
      options[name] = value;
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  if (options.help) return { action: 'help' };

  const [group, command, file, ...extra] = positional;
  if (group !== 'config') throw new UsageError(group ? `unknown command "${group}"` : 'no command given');
  if (!['plan', 'apply', 'export'].includes(command ?? ''))
    throw new UsageError(command ? `unknown command "config ${command}"` : 'config: say plan, apply or export');
  if (command === 'export') {
    if (file !== undefined) throw new UsageError(`config export takes no file (use --output FILE)`);
  } else if (file === undefined) {
    throw new UsageError(`config ${command}: give the YAML file`);
  }
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (command === 'export')
    for (const o of ['dry-run', 'no-prune', 'if-match', 'detailed-exitcode'])
      if (options[o] !== undefined) throw new UsageError(`--${o} does not apply to config export`);
  if (command !== 'export' && options.output !== undefined)
    throw new UsageError('--output applies to config export only');

  const url = (options.url ?? env.FLEETWATCH_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(url)) throw new UsageError(`--url must be an http(s) URL, got "${url}"`);
  const token = options.token ?? env.FLEETWATCH_TOKEN ?? env.FLEETWATCH_API_KEY;
  if (!token) throw new UsageError('no credentials: pass --token or set FLEETWATCH_TOKEN / FLEETWATCH_API_KEY');
  let ifMatch;
  if (options['if-match'] !== undefined) {
    if (!/^\d{1,15}$/.test(options['if-match']))
      throw new UsageError(`--if-match needs a config version number, got "${options['if-match']}"`);
    ifMatch = Number(options['if-match']);
  }
  const timeoutSeconds = options.timeout === undefined ? 60 : Number(options.timeout);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0)
    throw new UsageError(`--timeout needs a positive number of seconds, got "${options.timeout}"`);

  return {
    action: command === 'export' ? 'export' : 'import',
    file,
    url,
    token,
    dryRun: command === 'plan' || options['dry-run'] === true,
    prune: options['no-prune'] !== true,
    ifMatch,
    output: options.output,
    detailedExitCode: options['detailed-exitcode'] === true,
    json: options.json === true,
    timeoutMs: timeoutSeconds * 1000,
  };
}
