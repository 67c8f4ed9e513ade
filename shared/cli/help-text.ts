/** The end of a --help: examples that work as typed, and what each exit code means. Pure. */

export interface HelpExample {
  /** What it does, one line. */
  what: string;
  /** The command line, starting with how the user started us (`npx tasker`, `worker`...). */
  command: string;
}

/** Breaks `text` into lines of at most `width` characters, at spaces. */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}

export function formatHelpEnd(examples: readonly HelpExample[], exitCodes: readonly (readonly [number, string])[]): string {
  const out = ['', 'Examples:'];
  for (const example of examples) out.push(`  # ${example.what}`, `  ${example.command}`);
  out.push('', 'Exit codes:');
  for (const [code, meaning] of exitCodes) {
    const [first, ...rest] = wrapWords(meaning, 72);
    out.push(`  ${String(code).padEnd(4)} ${first}`, ...rest.map((line) => `       ${line}`));
  }
  return out.join('\n');
}
