#!/usr/bin/env node
// `npm run fleetwatch -- config plan|apply FILE.yaml | config export` — config as code for
// CI pipelines, over the gateway's REST API (docs/api.md, "Config as code"). Plain Node
// (fetch, no dependencies, no build). Exit codes: 0 ok, 1 failure, 2 changes with
// --detailed-exitcode, 64 bad usage.
import { readFile, writeFile } from 'node:fs/promises';
import { parseCommand, USAGE, UsageError } from './lib/args.mjs';
import { hasChanges, renderError, renderPlan } from './lib/plan.mjs';

const EXIT_USAGE = 64;

async function request(cmd, method, path, { body, headers = {} } = {}) {
  let res;
  try {
    res = await fetch(`${cmd.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${cmd.token}`, ...headers },
      body,
      signal: AbortSignal.timeout(cmd.timeoutMs),
    });
  } catch (e) {
    const why =
      e?.name === 'TimeoutError' ? `no answer within ${cmd.timeoutMs / 1000} s` : (e?.cause?.message ?? e?.message);
    throw new Failure(`fleetwatch: cannot reach the gateway at ${cmd.url}: ${why}\n`);
  }
  const text = await res.text();
  let parsed = text;
  if ((res.headers.get('content-type') ?? '').includes('json') && text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      // keep the text
    }
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

class Failure extends Error {
  constructor(output, code = 1) {
    super(output);
    this.output = output;
    this.code = code;
  }
}

async function runImport(cmd, out) {
  let yaml;
  try {
    yaml = await readFile(cmd.file, 'utf8');
  } catch (e) {
    throw new Failure(`fleetwatch: cannot read ${cmd.file}: ${e.message}\n`);
  }
  const query = new URLSearchParams({ dryRun: String(cmd.dryRun), prune: String(cmd.prune) });
  const headers = { 'content-type': 'application/yaml' };
  if (cmd.ifMatch !== undefined) headers['if-match'] = `"${cmd.ifMatch}"`;
  const res = await request(cmd, 'POST', `/api/v1/config/import?${query}`, { body: yaml, headers });
  const what = `config ${cmd.dryRun ? 'plan' : 'apply'} ${cmd.file}`;
  if (res.status !== 200) throw new Failure(renderError(res.status, res.body, what));
  if (typeof res.body !== 'object' || !Array.isArray(res.body.plan))
    throw new Failure(`fleetwatch: ${what}: unexpected answer from the gateway: ${res.text.slice(0, 500)}\n`);
  out.write(cmd.json ? `${JSON.stringify(res.body, null, 2)}\n` : renderPlan(res.body, { color: colorful(out) }));
  return cmd.detailedExitCode && hasChanges(res.body.plan) ? 2 : 0;
}

async function runExport(cmd, out) {
  const res = await request(cmd, 'GET', '/api/v1/config/export');
  if (res.status !== 200) throw new Failure(renderError(res.status, res.body, 'config export'));
  if (cmd.output) {
    await writeFile(cmd.output, res.text);
    process.stderr.write(
      `wrote ${cmd.output} (config version ${(res.headers.get('etag') ?? '?').replace(/"/g, '')})\n`,
    );
  } else {
    out.write(res.text);
  }
  return 0;
}

function colorful(stream) {
  return Boolean(stream.isTTY) && !('NO_COLOR' in process.env);
}

export async function main(argv, env, out = process.stdout, err = process.stderr) {
  let cmd;
  try {
    cmd = parseCommand(argv, env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err.write(`fleetwatch: ${e.message}\n\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  if (cmd.action === 'help') {
    out.write(`${USAGE}\n`);
    return 0;
  }
  try {
    return cmd.action === 'export' ? await runExport(cmd, out) : await runImport(cmd, out);
  } catch (e) {
    if (!(e instanceof Failure)) throw e;
    err.write(e.output);
    return e.code;
  }
}

process.exitCode = await main(process.argv.slice(2), process.env);
