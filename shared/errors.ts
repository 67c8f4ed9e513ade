/**
 * Errors the user can act on. Each carries a stable `code` and the exit code the
 * process ends with, so `main.ts` can classify without string matching.
 */

/** Process exit codes, shared by tasker and worker. Documented in the README. */
export const ExitCode = {
  ok: 0,
  commandsFailed: 1,
  usage: 2,
  /** The tasker or worker itself could not go on (disk full, broker lost for good). */
  internal: 3,
  /** The run was cancelled by an operator (`tasker cancel`); it cannot be resumed. */
  cancelled: 4,
  interrupted: 130,
} as const;

export type ErrorCode =
  | 'usage'
  | 'config'
  | 'jobs-file'
  | 'plan'
  | 'workdir'
  | 'run-state';

/** Bad input: wrong flag, bad jobs file, unsafe workdir. Nothing has run when this is thrown. */
export class InputError extends Error {
  readonly code: ErrorCode;
  readonly exitCode = ExitCode.usage;
  /** Every problem found, when there are several (config validation). */
  readonly problems: readonly string[];

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; problems?: readonly string[] }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'InputError';
    this.code = code;
    this.problems = options?.problems ?? [message];
  }
}

/** An error in a jobs file, always naming the file and the 1-based line. */
export class JobsFileError extends InputError {
  readonly file: string;
  readonly line: number;

  constructor(file: string, line: number, problem: string, options?: { cause?: unknown }) {
    super('jobs-file', `${file}:${line}: ${problem}`, options);
    this.name = 'JobsFileError';
    this.file = file;
    this.line = line;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
