import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { markerDirName } from './run-layout.js';

/**
 * With commands under another user, the run records (WORKDIR/.tasker) are written and read by
 * the tasker and the workers, which hold the secrets: commands must not be able to rename
 * `.tasker` and put a tree of their own in its place (links to /proc/1/environ, say, that the
 * tasker would read, or to files it would overwrite). So the workdir gets the sticky bit (commands
 * can then rename and delete only their own entries, as in /tmp), and `.tasker` and its `runs`
 * must be this process's. Checked at start-up; the bit is set when this process owns the workdir.
 * A workdir this process has just `created` is given to the commands' group (3775): they run in it.
 */
export async function guardRunRecords(workdir: string, commandUser: { uid: number; gid: number }, variable: string, created = false): Promise<void> {
  const own = process.getuid?.();
  if (own === undefined) return;
  const commandUid = commandUser.uid;
  if (created) {
    await fs.chown(workdir, own, commandUser.gid);
    await fs.chmod(workdir, 0o3775);
  }
  let stat = await fs.stat(workdir);
  if (stat.uid === own && (stat.mode & 0o1000) === 0) {
    await fs.chmod(workdir, (stat.mode & 0o7777) | 0o1000);
    stat = await fs.stat(workdir);
  }
  if (stat.uid === commandUid) {
    throw new InputError('workdir', `workdir ${workdir} belongs to the user commands run as (${variable}, uid ${commandUid}): they could replace the run records in ${markerDirName}/. Give it to this user and the commands its group: chown ${own}:GID ${workdir} && chmod 3775 ${workdir}`);
  }
  if ((stat.mode & 0o1000) === 0 && (stat.mode & 0o022) !== 0) {
    throw new InputError('workdir', `workdir ${workdir} is writable by others than its owner (uid ${stat.uid}) and has no sticky bit: commands could replace the run records in ${markerDirName}/. Set it: chmod +t ${workdir}`);
  }
  for (const path of [join(workdir, markerDirName), join(workdir, markerDirName, 'runs')]) {
    const entry = await fs.lstat(path).catch(() => undefined);
    if (entry !== undefined && (entry.uid !== own || !entry.isDirectory())) {
      throw new InputError('workdir', `${path} is not a directory of this user (uid ${own}) but of uid ${entry.uid} (an older version, or a command, made it): commands could change the run records. chown -R ${own} ${path}, or use another workdir`);
    }
  }
}
