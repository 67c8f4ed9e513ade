import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { CommandUserSpec } from '../config/config-values.js';
import { InputError } from '../errors.js';
import type { Logger } from '../observe/logger.js';

/**
 * The user commands run as when it is not this process's own (TASKER_COMMAND_USER,
 * WORKER_COMMAND_USER): its name resolved, and the start-up check that this process can start
 * commands as that user and stop them. Why: see docs/architecture.md, "Commands under another user".
 */

export interface CommandUser {
  uid: number;
  gid: number;
  /** For messages: `nobody (65534:65534)`. */
  label: string;
  /** The account's name and home, when the user database knows the uid: the commands' USER and HOME. */
  name?: string;
  home?: string;
}

interface Account {
  name: string;
  id: number;
  gid: number;
  home: string;
}

/** Lines of /etc/passwd or /etc/group (`name:x:id:gid:...:home:...`); the database through NSS (`getent`) when the file lacks it. */
function lookUp(database: 'passwd' | 'group', key: string): Account | undefined {
  const parse = (line: string): Account | undefined => {
    const fields = line.split(':');
    if (fields.length < 3 || !/^\d+$/.test(fields[2] ?? '')) return undefined;
    return { name: fields[0]!, id: Number(fields[2]), gid: Number(fields[3] ?? fields[2]), home: fields[5] ?? '' };
  };
  const matches = (account: Account | undefined): boolean => account !== undefined && (/^\d+$/.test(key) ? account.id === Number(key) : account.name === key);
  let text = '';
  try {
    text = readFileSync(`/etc/${database}`, 'utf8');
  } catch {
    // no such file (macOS keeps its users elsewhere): getent, below
  }
  const inFile = text.split('\n').map(parse).find(matches);
  if (inFile !== undefined) return inFile;
  const asked = spawnSync('getent', [database, key], { encoding: 'utf8', timeout: 10_000 });
  const answer = asked.status === 0 ? parse(asked.stdout.trim().split('\n')[0] ?? '') : undefined;
  return matches(answer) ? answer : undefined;
}

/** Names looked up, numbers taken as they are; throws one InputError naming the variable. */
export function resolveCommandUser(spec: CommandUserSpec): CommandUser {
  const account = lookUp('passwd', spec.user);
  const numeric = /^\d+$/.test(spec.user);
  if (account === undefined && !numeric) throw new InputError('config', `${spec.variable}: no user "${spec.user}" on this machine`);
  let gid = account?.gid;
  if (spec.group !== undefined) {
    gid = /^\d+$/.test(spec.group) ? Number(spec.group) : lookUp('group', spec.group)?.id;
    if (gid === undefined) throw new InputError('config', `${spec.variable}: no group "${spec.group}" on this machine`);
  }
  if (gid === undefined) throw new InputError('config', `${spec.variable}: uid ${spec.user} has no entry in the user database, so its group is unknown: give it as ${spec.user}:GID`);
  const uid = account?.id ?? Number(spec.user);
  if (uid === 0 || gid === 0) throw new InputError('config', `${spec.variable}: "${spec.user}" is root or has group root (0), which could read every secret of this process; name an unprivileged user such as nobody`);
  const name = account?.name;
  return { uid, gid, label: `${name ?? 'uid'} (${uid}:${gid})`, ...(name === undefined ? {} : { name }), ...(account?.home ? { home: account.home } : {}) };
}

/**
 * TASKER_COMMAND_USER or WORKER_COMMAND_USER as the composition root needs it: resolved and
 * checked (InputError, exit 2, when this process cannot switch), or undefined when unset.
 */
export async function setUpCommandUser(spec: CommandUserSpec | undefined): Promise<CommandUser | undefined> {
  if (spec === undefined) return undefined;
  const user = resolveCommandUser(spec);
  await checkCommandUser(user, spec.variable);
  return user;
}

/** What commands get in their environment for their own user: HOME, USER and LOGNAME, when the account has them. */
export function commandUserEnvironment(user: CommandUser): Record<string, string> {
  return { ...(user.home === undefined ? {} : { HOME: user.home }), ...(user.name === undefined ? {} : { USER: user.name, LOGNAME: user.name }) };
}

function cannotSwitch(variable: string, user: CommandUser, how: string): InputError {
  return new InputError(
    'config',
    `${variable}: this process (uid ${process.getuid?.() ?? '?'}) cannot ${how} ${user.label}. ` +
      'It must run as root, or hold the capabilities SETUID, SETGID and KILL (in Kubernetes: runAsUser 0 and capabilities add [SETUID, SETGID, KILL], as k8s/ does); ' +
      `or unset ${variable} to run commands as this process's own user, which lets them read its secrets`,
  );
}

/**
 * Throws an InputError (exit 2) unless this process can start a command as `user` and signal its
 * process group: starts `sleep` as that user in a group of its own, signals it, ends it.
 */
export async function checkCommandUser(user: CommandUser, variable: string): Promise<void> {
  const own = process.getuid?.();
  if (own === undefined) throw new InputError('config', `${variable}: running commands as another user needs a POSIX system`);
  if (own === user.uid) throw new InputError('config', `${variable}: ${user.label} is this process's own user; commands would read its secrets all the same. Name another user, or unset ${variable}`);
  let child;
  try {
    child = spawn('sleep', ['10'], { uid: user.uid, gid: user.gid, detached: true, stdio: 'ignore' });
    child.unref();
  } catch {
    // EPERM from setuid/setgid in the child, reported at once
    throw cannotSwitch(variable, user, 'start commands as');
  }
  const started = await new Promise<boolean>((resolve) => {
    child.once('spawn', () => resolve(true));
    child.once('error', () => resolve(false));
  });
  if (!started || child.pid === undefined) throw cannotSwitch(variable, user, 'start commands as');
  try {
    process.kill(-child.pid, 0);
  } catch {
    // EPERM: it could start them, but not stop them (no CAP_KILL); `sleep` ends by itself.
    throw cannotSwitch(variable, user, 'stop (signal) the commands of');
  }
  process.kill(-child.pid, 'SIGKILL');
}

/**
 * Said once at start: who commands run as; a warning when they run as this process's own user
 * while it holds `secrets`, which they can then read through /proc (its environment, its memory).
 */
export function sayCommandUser(logger: Logger, user: CommandUser | undefined, secrets: readonly string[], variable: string): void {
  if (user !== undefined) {
    logger.info({ commandUser: user.label }, 'commands run as another user');
    return;
  }
  if (secrets.length === 0) return;
  logger.warn({ secrets, uid: process.getuid?.() }, `commands run as this process's own user and can read ${secrets.join(', ')} through /proc; set ${variable} to run them as another user`);
}
