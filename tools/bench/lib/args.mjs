// Command-line options of the bench tools: `--name value`, `--name=value`, booleans as a bare `--flag`
// (or `--flag true|false`). Every option must be in `defaults`, whose values give the types.

/** Parses argv against `defaults` (unknown options and non-numbers where a number is due are refused). */
export function parseArgs(argv, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`unknown argument ${argv[i]}`);
    const name = m[1];
    if (!(name in defaults)) throw new Error(`unknown option --${name} (known: ${Object.keys(defaults).join(', ')})`);
    const isBool = typeof defaults[name] === 'boolean';
    const value =
      m[2] ?? (isBool ? (argv[i + 1] === 'true' || argv[i + 1] === 'false' ? argv[++i] : 'true') : argv[++i]);
    out[name] = typeof defaults[name] === 'number' ? Number(value) : isBool ? value === 'true' : value;
    if (typeof defaults[name] === 'number' && !Number.isFinite(out[name]))
      throw new Error(`--${name} needs a number, got ${value}`);
  }
  return out;
}
