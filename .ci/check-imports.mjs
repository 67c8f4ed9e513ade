// Boundaries from STYLE.md, checked on the sources: tasker/ and worker/ never import each other,
// shared/ imports neither, only adapters import clients, and no import cycles.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const top = ['tasker', 'worker', 'shared'];
/** Client libraries only adapters may import; the value lists the files allowed to. */
const adapterOnly = {
  amqplib: /^(shared|tasker|worker)\/amqp[^/]*\.ts$/,
  ioredis: /^(shared|tasker|worker)\/redis[^/]*\.ts$/,
  '@aws-sdk/': /^(shared|tasker|worker)\/s3[^/]*\.ts$/,
  execa: /^shared\/executor\.ts$/,
  'node:child_process': /^shared\/(executor(-process)?|shell-runner|shell-syntax)\.ts$/,
  'prom-client': /^shared\/metrics-server\.ts$/,
  'node:http': /^shared\/metrics-server\.ts$/,
};

function files(dir) {
  const out = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...files(path));
    else if (path.endsWith('.ts')) out.push(path);
  }
  return out;
}

const problems = [];
const graph = new Map();
for (const area of top) {
  for (const file of files(join(root, area))) {
    const rel = relative(root, file);
    const source = readFileSync(file, 'utf8');
    const edges = [];
    for (const match of source.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gm)) {
      const spec = match[1];
      if (spec.startsWith('.')) {
        const target = relative(root, resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
        edges.push(target);
        const [fromArea] = rel.split('/');
        const [toArea] = target.split('/');
        if (fromArea !== toArea && toArea !== 'shared') problems.push(`${rel} imports ${target}: ${fromArea}/ must not import ${toArea}/`);
      } else {
        for (const [lib, allowed] of Object.entries(adapterOnly)) {
          if ((spec === lib || spec.startsWith(lib)) && !allowed.test(rel)) problems.push(`${rel} imports ${spec}: only its adapter may`);
        }
      }
    }
    graph.set(rel, edges);
  }
}

const state = new Map();
function visit(node, stack) {
  if (state.get(node) === 'done') return;
  if (state.get(node) === 'active') {
    problems.push(`import cycle: ${[...stack.slice(stack.indexOf(node)), node].join(' -> ')}`);
    return;
  }
  state.set(node, 'active');
  for (const next of graph.get(node) ?? []) visit(next, [...stack, node]);
  state.set(node, 'done');
}
for (const node of graph.keys()) visit(node, []);

if (problems.length > 0) {
  console.error(`import boundaries: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`import boundaries: ${graph.size} files, no cycles, no forbidden imports`);
