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
 * The URL with its scheme in lower case. Schemes are case-insensitive, and `new URL()` (which the
 * checks above use) lowers them; but ioredis decides on TLS with a case-sensitive
 * `startsWith('rediss://')` on the text it is given, so `REDISS://` passed the check and then
 * connected in plain text, sending AUTH in clear. Every URL is handed on in this form.
 */
export function lowercaseScheme(url: string): string {
  return url.replace(/^[A-Za-z][A-Za-z0-9+.-]*:/, (scheme) => scheme.toLowerCase());
}

/** Whether the URL asks for TLS: amqps://, rediss://, https:// (in any case). */
export function usesTls(url: string): boolean {
  return /^(amqps|rediss|https):/i.test(url);
}

/** localhost, *.localhost, 127.0.0.0/8 and ::1 (also as ::ffff:127.x.x.x), as `URL.hostname` spells them. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(host);
}

/** Something to log at start-up that does not stop it. */
export interface ConfigWarning {
  /** The variable (or flag) it is about. */
  variable: string;
  host: string;
  message: string;
}

const secureSchemes: Record<string, string> = { 'amqp:': 'amqps://', 'redis:': 'rediss://', 'http:': 'https://' };

/**
 * A plain-text connection to another machine carries its password and every command in clear:
 * worth a warning. One to a loopback address (a port-forward, a local broker) does not leave the
 * machine. Undefined for TLS, loopback, and URLs the checks reject anyway.
 */
export function plainTextWarning(variable: string, url: string): ConfigWarning | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined; // reported as a problem by the URL's check
  }
  const secure = secureSchemes[parsed.protocol];
  if (secure === undefined || parsed.hostname === '' || isLoopbackHost(parsed.hostname)) return undefined;
  return {
    variable,
    host: parsed.hostname,
    message: `${variable} connects to ${parsed.hostname} in plain text: its password and data cross the network unencrypted; use ${secure}`,
  };
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
