#!/usr/bin/env node
// What dominates a V8 heap snapshot (.heapsnapshot, as written by --heapsnapshot-signal
// or v8.writeHeapSnapshot()): self size per constructor, retained size per constructor
// (instances nested in another of the same constructor counted once, as DevTools does),
// the biggest single retainers with their dominator chain, and the largest strings.
//
//   node tools/bench/memory/heap-summary.mjs <file.heapsnapshot> [--top 15] [--json]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const MB = 1024 * 1024;

/** Parses the snapshot text and computes dominators and retained sizes. */
export function summarizeSnapshot(text) {
  const snap = JSON.parse(text);
  const meta = snap.snapshot.meta;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const nType = meta.node_fields.indexOf('type');
  const nName = meta.node_fields.indexOf('name');
  const nSize = meta.node_fields.indexOf('self_size');
  const nEdges = meta.node_fields.indexOf('edge_count');
  const eType = meta.edge_fields.indexOf('type');
  const eName = meta.edge_fields.indexOf('name_or_index');
  const eTo = meta.edge_fields.indexOf('to_node');
  const nodeTypes = meta.node_types[nType];
  const edgeTypes = meta.edge_types[eType];
  const WEAK = edgeTypes.indexOf('weak');
  const SHORTCUT = edgeTypes.indexOf('shortcut');
  const { nodes, edges, strings } = snap;
  const n = nodes.length / nf;

  const firstEdge = new Uint32Array(n + 1);
  for (let i = 0, e = 0; i < n; i++) {
    firstEdge[i] = e;
    e += nodes[i * nf + nEdges] * ef;
  }
  firstEdge[n] = edges.length;

  const typeOf = (i) => nodeTypes[nodes[i * nf + nType]];
  const rawName = (i) => strings[nodes[i * nf + nName]];
  const selfSize = (i) => nodes[i * nf + nSize];
  /** DevTools-like class name of a node. */
  const classOf = (i) => {
    const t = typeOf(i);
    switch (t) {
      case 'object':
      case 'native':
        return rawName(i);
      case 'closure':
        return '(closure)';
      case 'string':
      case 'concatenated string':
      case 'sliced string':
        return '(string)';
      case 'code':
        return '(compiled code)';
      case 'array':
        return '(array)';
      case 'regexp':
        return '(regexp)';
      case 'number':
      case 'heap number':
        return '(number)';
      case 'hidden':
        return `(system) ${rawName(i).replace(/ \/ .*$/, '')}`;
      default:
        return `(${t}) ${rawName(i)}`;
    }
  };

  // Reverse post-order DFS from the root (node 0), over strong edges.
  const strong = (e) => {
    const t = edges[e + eType];
    return t !== WEAK && t !== SHORTCUT;
  };
  const postOrder = new Int32Array(n).fill(-1);
  const order = new Uint32Array(n);
  let count = 0;
  {
    const stack = new Uint32Array(n);
    const cursor = new Uint32Array(n);
    const visited = new Uint8Array(n);
    let sp = 0;
    stack[sp++] = 0;
    visited[0] = 1;
    cursor[0] = firstEdge[0];
    while (sp) {
      const v = stack[sp - 1];
      if (cursor[v] < firstEdge[v + 1]) {
        const e = cursor[v];
        cursor[v] += ef;
        if (!strong(e)) continue;
        const w = edges[e + eTo] / nf;
        if (!visited[w]) {
          visited[w] = 1;
          cursor[w] = firstEdge[w];
          stack[sp++] = w;
        }
      } else {
        sp--;
        postOrder[v] = count;
        order[count++] = v;
      }
    }
  }
  // Predecessors (strong edges between reachable nodes).
  const predCount = new Uint32Array(n + 1);
  for (let v = 0; v < n; v++) {
    if (postOrder[v] < 0) continue;
    for (let e = firstEdge[v]; e < firstEdge[v + 1]; e += ef) {
      if (!strong(e)) continue;
      const w = edges[e + eTo] / nf;
      if (postOrder[w] >= 0) predCount[w + 1]++;
    }
  }
  for (let i = 0; i < n; i++) predCount[i + 1] += predCount[i];
  const preds = new Uint32Array(predCount[n]);
  {
    const fill = predCount.slice(0, n);
    for (let v = 0; v < n; v++) {
      if (postOrder[v] < 0) continue;
      for (let e = firstEdge[v]; e < firstEdge[v + 1]; e += ef) {
        if (!strong(e)) continue;
        const w = edges[e + eTo] / nf;
        if (postOrder[w] >= 0) preds[fill[w]++] = v;
      }
    }
  }
  // Cooper–Harvey–Kennedy iterative dominators, in post-order numbers.
  const UNDEF = 0xffffffff;
  const idom = new Uint32Array(count).fill(UNDEF);
  const rootPo = postOrder[0];
  idom[rootPo] = rootPo;
  for (let changed = true; changed;) {
    changed = false;
    for (let k = count - 1; k >= 0; k--) {
      if (k === rootPo) continue;
      const v = order[k];
      let nd = UNDEF;
      for (let p = predCount[v]; p < predCount[v + 1]; p++) {
        let b = postOrder[preds[p]];
        if (idom[b] === UNDEF) continue;
        if (nd === UNDEF) {
          nd = b;
          continue;
        }
        let a = nd;
        while (a !== b) {
          while (a < b) a = idom[a];
          while (b < a) b = idom[b];
        }
        nd = a;
      }
      if (nd !== UNDEF && idom[k] !== nd) {
        idom[k] = nd;
        changed = true;
      }
    }
  }
  // Retained sizes: children before parents in post-order.
  const retained = new Float64Array(count);
  for (let k = 0; k < count; k++) retained[k] += selfSize(order[k]);
  for (let k = 0; k < count; k++) if (k !== rootPo && idom[k] !== UNDEF) retained[idom[k]] += retained[k];

  // Per class: count, self, and retained of instances with no same-class dominator above them.
  const classes = new Map();
  const classKey = new Array(count);
  for (let k = 0; k < count; k++) classKey[k] = classOf(order[k]);
  const domChildren = new Map();
  for (let k = 0; k < count; k++) {
    if (k === rootPo || idom[k] === UNDEF) continue;
    const list = domChildren.get(idom[k]);
    if (list) list.push(k);
    else domChildren.set(idom[k], [k]);
  }
  {
    const onPath = new Map();
    const stack = [[rootPo, 0]];
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [k, state] = top;
      const key = classKey[k];
      if (state === 0) {
        top[1] = 1;
        const c = classes.get(key) ?? { name: key, count: 0, self: 0, retained: 0 };
        classes.set(key, c);
        c.count++;
        c.self += selfSize(order[k]);
        if (!onPath.get(key)) c.retained += retained[k];
        onPath.set(key, (onPath.get(key) ?? 0) + 1);
        for (const child of domChildren.get(k) ?? []) stack.push([child, 0]);
      } else {
        stack.pop();
        onPath.set(key, onPath.get(key) - 1);
      }
    }
  }

  const describe = (k) => {
    const i = order[k];
    const name = rawName(i);
    const cls = classKey[k];
    return cls === name || !name ? cls : `${cls} ${JSON.stringify(name.slice(0, 60))}`;
  };
  const chain = (k) => {
    const parts = [];
    for (let p = idom[k], hops = 0; p !== rootPo && p !== UNDEF && hops < 4; p = idom[p], hops++)
      parts.push(describe(p));
    return parts.join(' ← ');
  };
  // Biggest single dominators below the synthetic roots, skipping ones whose parent is within 10 % of them.
  const candidates = [];
  for (let k = 0; k < count; k++) {
    const t = typeOf(order[k]);
    if (t === 'synthetic' || k === rootPo) continue;
    if (retained[k] < 256 * 1024) continue;
    const parent = idom[k];
    const parentIsSynthetic = parent === rootPo || typeOf(order[parent]) === 'synthetic';
    if (!parentIsSynthetic && retained[parent] < retained[k] * 1.1) continue;
    candidates.push(k);
  }
  candidates.sort((a, b) => retained[b] - retained[a]);

  const bigStrings = [];
  for (let k = 0; k < count; k++) {
    const i = order[k];
    if (typeOf(i) === 'string' && selfSize(i) >= 64 * 1024)
      bigStrings.push({ size: selfSize(i), text: rawName(i).slice(0, 100).replace(/\s+/g, ' ') });
  }
  bigStrings.sort((a, b) => b.size - a.size);

  let total = 0;
  for (let i = 0; i < n; i++) total += selfSize(i);
  return {
    nodes: n,
    totalMb: total / MB,
    reachableMb: retained[rootPo] / MB,
    classes: [...classes.values()].map((c) => ({ ...c, self: c.self / MB, retained: c.retained / MB })),
    dominators: candidates
      .slice(0, 40)
      .map((k) => ({ what: describe(k), retainedMb: retained[k] / MB, chain: chain(k) })),
    strings: bigStrings.slice(0, 20).map((s) => ({ kb: s.size / 1024, text: s.text })),
  };
}

export function printSummary(s, { top = 15 } = {}) {
  const f = (x) => x.toFixed(2).padStart(7);
  console.log(
    `  ${s.nodes} nodes, ${s.totalMb.toFixed(1)} MB in the snapshot, ${s.reachableMb.toFixed(1)} MB reachable`,
  );
  console.log('  by constructor, self size (MB, count):');
  for (const c of [...s.classes].sort((a, b) => b.self - a.self).slice(0, top))
    console.log(`    ${f(c.self)}  ${String(c.count).padStart(7)}  ${c.name}`);
  console.log('  by constructor, retained size (MB):');
  for (const c of [...s.classes]
    .filter((c) => !c.name.startsWith('(synthetic)'))
    .sort((a, b) => b.retained - a.retained)
    .slice(0, top))
    console.log(`    ${f(c.retained)}  ${c.name}`);
  console.log('  biggest retainers (MB, dominator chain):');
  for (const d of s.dominators.slice(0, top))
    console.log(`    ${f(d.retainedMb)}  ${d.what}${d.chain ? `  ← ${d.chain}` : ''}`);
  if (s.strings.length) {
    console.log('  largest strings (KB):');
    for (const t of s.strings.slice(0, Math.min(top, 10)))
      console.log(`    ${t.kb.toFixed(0).padStart(7)}  ${JSON.stringify(t.text)}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: heap-summary.mjs <file.heapsnapshot> [--top N] [--json]');
    process.exit(2);
  }
  const topAt = process.argv.indexOf('--top');
  const summary = summarizeSnapshot(readFileSync(file, 'utf8'));
  if (process.argv.includes('--json')) console.log(JSON.stringify(summary));
  else printSummary(summary, { top: topAt > 0 ? Number(process.argv[topAt + 1]) : 15 });
}
