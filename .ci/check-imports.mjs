// Boundaries from STYLE.md, checked on the sources: tasker/ and worker/ never import each other,
// shared/ imports neither, only adapters import clients, pure logic does no I/O, and no import
// cycles.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const top = ['tasker', 'worker', 'shared'];
/** Client libraries only adapters may import; the value says which files may. */
const adapterOnly = {
  amqplib: /^shared\/broker\/amqp-[^/]*\.ts$/,
  ioredis: /^shared\/redis\/redis-[^/]*\.ts$/,
  '@aws-sdk/': /^shared\/storage\/s3-[^/]*\.ts$/,
  execa: /^shared\/exec\/[^/]*\.ts$/,
  'node:child_process': /^(shared\/exec\/[^/]*|tasker\/jobs\/shell-syntax)\.ts$/,
  'prom-client': /^shared\/observe\/metrics-[^/]*\.ts$/,
  'node:http': /^shared\/observe\/metrics-[^/]*\.ts$/,
};
/**
 * Pure logic: parsing, planning, message schema, names, configuration values, summaries. These
 * files do no I/O: they import no client library and no I/O module, and only other pure files.
 */
const pure = [
  /^tasker\/jobs\/(jobs-file|plan)\.ts$/,
  /^tasker\/report\/(summary|summary-text|pool-sizing|resource-stats|report-(bins|data|failures|workers|model|page))\.ts$/,
  /^tasker\/distributed\/phase-dispatch\.ts$/,
  /^shared\/errors\.ts$/,
  /^shared\/config\/[^/]*\.ts$/,
  /^shared\/broker\/(messages|signing)\.ts$/,
  /^shared\/(state\/(results|usage|placement|fair-share)|run-dir\/run-layout|redis\/marks)\.ts$/,
  /^shared\/storage\/(outputs|s3-config)\.ts$/,
  /^shared\/exec\/simple-command\.ts$/,
  /^shared\/observe\/metrics-config\.ts$/,
  /^worker\/(message\/lease-holder)\.ts$/,
];
/** What a pure file may import from outside the project: computation, never I/O. */
const pureAllowed = new Set(['node:path', 'node:buffer', 'node:crypto', 'ms']);
const isPure = (rel) => pure.some((pattern) => pattern.test(rel));

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
    for (const match of source.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^;]*?from\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gm)) {
      const typeOnly = match[1] !== undefined;
      const spec = match[2] ?? match[3];
      if (spec.startsWith('.')) {
        const target = relative(root, resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
        edges.push(target);
        const [fromArea] = rel.split('/');
        const [toArea] = target.split('/');
        if (fromArea !== toArea && toArea !== 'shared') problems.push(`${rel} imports ${target}: ${fromArea}/ must not import ${toArea}/`);
        if (isPure(rel) && !typeOnly && !isPure(target)) problems.push(`${rel} imports ${target}: pure logic imports only pure files`);
      } else {
        if (isPure(rel) && !pureAllowed.has(spec)) problems.push(`${rel} imports ${spec}: pure logic does no I/O and imports no client`);
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
