import type { RunKeyPart } from '../config/names.js';

/**
 * The compact marks a finished attempt leaves in Redis once the tasker has its record in
 * results.jsonl: one bit per command, in a bitmap per jobs file whose bit number is the command's
 * line (`f2-L42`: bit 42 of the file's bitmap). `ok:fN` marks the commands that succeeded,
 * `failed:A:fN` those whose attempt A failed. A duplicate delivery of a marked attempt is not run
 * again. A million-line jobs file takes 125 KB per bitmap. Pure: key parts and bit numbers only.
 */

export interface Mark {
  part: RunKeyPart;
  /** Bit number in the bitmap. */
  bit: number;
}

const tasker = /^f(\d{1,9})-L(\d{1,10})$/;
/** Bitmap offsets Redis accepts: below 2^32. */
const maxBit = 2 ** 32 - 1;

/** Where a bit for `id` goes under `prefix`: the file's bitmap, or (ids the tasker does not make) a bitmap of the id's own. */
function markOf(prefix: 'ok' | `failed:${number}`, id: string): Mark {
  const match = tasker.exec(id);
  const line = Number(match?.[2]);
  if (match !== null && line <= maxBit) return { part: `${prefix}:f${match[1]}`, bit: line };
  return { part: `${prefix}:id:${id}`, bit: 0 };
}

/** The mark of a command that succeeded (any attempt). */
export function succeededMark(id: string): Mark {
  return markOf('ok', id);
}

/** The mark of one failed attempt of a command. */
export function failedMark(id: string, attempt: number): Mark {
  return markOf(`failed:${attempt}`, id);
}
