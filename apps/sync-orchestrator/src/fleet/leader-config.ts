import { readFileSync } from 'node:fs';
import { ConfigError } from '@fleetwatch/config';
import { leaderConfigSchema, storeSafetyIssue, type MemberConfig } from '@fleetwatch/contracts';

// FLEETWATCH_LEADER_CONFIG read once at boot (SPEC §8): JSON, or a path to a JSON file,
// validated with the shared contract; each member's secret read from the variable it names.
// The secret stays inside a closure that builds the Authorization header: it is not a
// property of any object, so no log line, error or JSON dump of a member can carry it.

export interface LeaderMember extends Omit<MemberConfig, 'credentials'> {
  /** How the member is reached: `token`, `basic` or `none`; never the secret. */
  auth: 'token' | 'basic' | 'none';
  /** The Authorization header value (undefined: none). Call it only to send a request. */
  authorization(): string | undefined;
  /** JSON form for logs: no secret (toJSON is what pino and JSON.stringify use). */
  toJSON(): Record<string, unknown>;
}

const VARIABLE = 'FLEETWATCH_LEADER_CONFIG';

function problem(message: string): never {
  throw new ConfigError([{ variable: VARIABLE, message }]);
}

/** The text of the config: the value itself when it looks like JSON, else the file it names (`file`). */
function textOf(raw: string, readFile: (path: string) => string): { text: string; file?: string } {
  const trimmed = raw.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) return { text: trimmed };
  let text: string;
  try {
    text = readFile(trimmed);
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'error';
    return problem(`neither JSON nor a readable file: ${JSON.stringify(trimmed.slice(0, 200))} (${code})`);
  }
  // A byte order mark (some editors begin UTF-8 files with one) is not JSON: JSON.parse refused the file over an
  // invisible character.
  return { text: text.replace(/^\uFEFF/, ''), file: trimmed };
}

/**
 * The members of a leader, or [] when the variable is unset. Throws ConfigError naming
 * every problem (JSON position, contract issues with their paths, missing secret variables
 * by name — never a value).
 */
export function loadLeaderConfig(
  raw: string | undefined,
  env: Record<string, string | undefined> = process.env,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): LeaderMember[] {
  if (raw === undefined || raw.trim() === '') return [];
  const { text, file } = textOf(raw, readFile);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    problem(
      `${file === undefined ? '' : `file ${JSON.stringify(file.slice(0, 200))} is `}not valid JSON: ${(err as Error).message}`,
    );
  }
  const parsed = leaderConfigSchema.safeParse(json);
  if (!parsed.success)
    throw new ConfigError(
      parsed.error.issues.map((i) => ({
        variable: VARIABLE,
        message: `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`,
      })),
    );
  // Tags and property overrides are written to fleet_sites (text[], jsonb): what Postgres refuses (a NUL, a lone
  // surrogate) or JSON cannot hold (1e400) is named here, at boot, not by a write failing on every poll tick.
  const unstorable: { variable: string; message: string }[] = [];
  parsed.data.members.forEach((m, i) => {
    const issue = storeSafetyIssue({ tags: m.tags, propertyOverrides: m.propertyOverrides });
    if (issue)
      unstorable.push({ variable: VARIABLE, message: `members.${i}.${issue.path.join('.')}: ${issue.message}` });
  });
  if (unstorable.length > 0) throw new ConfigError(unstorable);
  const missing: { variable: string; message: string }[] = [];
  const members = parsed.data.members.map((m, i) => {
    const { credentials, ...rest } = m;
    let header: string | undefined;
    if (credentials) {
      const name = credentials.type === 'token' ? credentials.tokenEnv : credentials.passwordEnv;
      // The line break a secret file or `echo` leaves at the end is no part of it (as `$(cat file)` drops it).
      const secret = env[name]?.replace(/\r?\n$/, '');
      if (secret === undefined || secret === '')
        missing.push({ variable: VARIABLE, message: `members.${i}.credentials: variable ${name} is not set` });
      else if (credentials.type === 'token' && !/^[\x21-\x7e]+$/.test(secret))
        // Named at boot, never the value: in the header it failed every poll with undici's opaque invalid-argument.
        missing.push({
          variable: VARIABLE,
          message: `members.${i}.credentials: variable ${name} holds a character a bearer token cannot carry (a space, a line break or another control character, or non-ASCII)`,
        });
      else if (credentials.type === 'token') header = `Bearer ${secret}`;
      else header = `Basic ${Buffer.from(`${credentials.username}:${secret}`, 'utf8').toString('base64')}`;
    }
    const auth = credentials?.type ?? 'none';
    const member: LeaderMember = {
      ...rest,
      auth,
      authorization: () => header,
      toJSON: () => ({ ...rest, auth }),
    };
    return member;
  });
  if (missing.length > 0) throw new ConfigError(missing);
  return members;
}
