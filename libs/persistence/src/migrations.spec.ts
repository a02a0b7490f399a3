import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// Prisma's migration engine here (the Wasm schema engine) splits a migration into statements at
// every semicolon — comments included — so a semicolon in a comment breaks `migrate deploy` for
// every later run with "syntax error at or near …". Cheap to catch before any database is involved.
const dir = join(__dirname, '../prisma/migrations');
const migrations = readdirSync(dir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe('migrations', () => {
  it.each(migrations)('%s: no semicolon inside a comment', (name) => {
    const lines = readFileSync(join(dir, name, 'migration.sql'), 'utf8').split('\n');
    const bad = lines
      .map((line, i) => ({ line, n: i + 1 }))
      .filter(({ line }) => line.includes('--') && line.slice(line.indexOf('--')).includes(';'));
    expect(bad.map(({ n, line }) => `${name}/migration.sql:${n}: ${line}`)).toEqual([]);
  });

  it('folder names are unique timestamps', () => {
    const stamps = migrations.map((m) => m.slice(0, 14));
    expect(new Set(stamps).size).toBe(stamps.length);
    for (const s of stamps) expect(s).toMatch(/^\d{14}$/);
  });
});
