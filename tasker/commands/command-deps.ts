/** What the subcommands are handed by the composition root (main.ts): the process's environment and stdout as plain values, and where the exit code goes. */

export interface CommandDeps {
  env: Record<string, string | undefined>;
  cwd: string;
  /** Writes to stdout and waits for it to drain; nothing once its reader is gone. */
  write: (text: string) => Promise<void>;
  now: () => number;
  setExitCode: (code: number) => void;
}

/** What `tasker status` and `tasker purge` need besides. */
export interface OpsCommandDeps extends CommandDeps {
  /** Writes to stdout without waiting. */
  writeNow: (text: string) => void;
  /** How the user started the tasker, e.g. `npx tasker` (printed hints start with it). */
  invocation: string;
  /** stderr is a terminal: logs are pretty-printed. */
  prettyLogs: boolean;
}
