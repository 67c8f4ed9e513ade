/** Connection URLs: checked before use, and never shown with their password. Pure. */

/** Removes the password from a connection URL before it is shown anywhere. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    // Field by field only with an authority ("scheme://user:password@host"): "user:pw@host"
    // parses too, as scheme "user:" with the password in its path.
    if (parsed.host !== '') {
      if (parsed.password !== '') parsed.password = '***';
      return parsed.toString();
    }
  } catch {
    // not a URL: redacted below
  }
  // Hide everything before the last "@" but a scheme-like prefix, with or without "//".
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/*)?.*@/s, '$1***@');
}

export function checkAmqpUrl(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `AMQP_URL is not a URL (expected amqp://USER:PASSWORD@HOST:5672/VHOST), got "${redactUrl(url)}"`;
  }
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    return `AMQP_URL must start with amqp:// or amqps://, got "${parsed.protocol}//"`;
  }
  if (parsed.hostname === '') return 'AMQP_URL has no host';
  return undefined;
}

export function checkRedisUrl(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `REDIS_URL is not a URL (expected redis://[:PASSWORD@]HOST:6379[/DB]), got "${redactUrl(url)}"`;
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') return `REDIS_URL must start with redis:// or rediss://, got "${parsed.protocol}//"`;
  return undefined;
}

/**
 * The command line with every URL's password hidden (`--amqp-url amqp://u:***@host`), or undefined
 * when no argument holds one. /proc/PID/cmdline is readable by every process of the machine; the
 * composition roots set it as the process title, which overwrites it.
 */
export function redactedArgv(argv: readonly string[]): string[] | undefined {
  let changed = false;
  const redacted = argv.map((arg) => {
    const match = /^(--[a-z-]+=)?([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*@.*)$/s.exec(arg);
    if (match === null) return arg;
    const hidden = `${match[1] ?? ''}${redactUrl(match[2]!)}`;
    changed ||= hidden !== arg;
    return hidden;
  });
  return changed ? redacted : undefined;
}
