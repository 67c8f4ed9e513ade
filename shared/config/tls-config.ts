import { createPrivateKey, X509Certificate } from 'node:crypto';

/**
 * TLS with your own CA: the PEM files named by AMQP_TLS_*, REDIS_TLS_* (and AWS_CA_BUNDLE, read
 * by s3-config.ts), read once at start-up into what Node's `tls` takes (`ca`, `cert`, `key`), and
 * what a failed handshake means in words. Pure: reading a file goes through ConfigProblems.file.
 */

/** Node's tls options of one connection; a field left out keeps Node's default. */
export interface TlsFiles {
  /** CA certificates the server's certificate must chain to; they replace the system's CAs. */
  ca?: Buffer;
  /** Client certificate (and chain), sent when the server asks for one. */
  cert?: Buffer;
  /** Its private key, unencrypted. */
  key?: Buffer;
}

/** What reading a file needs of ConfigProblems (config-values.ts). */
export interface FileProblems {
  /** The file's bytes, read once; undefined (and a problem naming `variable`) when it cannot be read. */
  file(variable: string, path: string): Buffer | undefined;
  add(problem: string): void;
}

export type TlsService = 'AMQP' | 'REDIS';

const servers: Record<TlsService, { name: string; url: string; scheme: string }> = {
  AMQP: { name: 'RabbitMQ', url: 'AMQP_URL', scheme: 'amqps://' },
  REDIS: { name: 'Redis', url: 'REDIS_URL', scheme: 'rediss://' },
};

function tlsVariables(service: TlsService): { ca: string; cert: string; key: string } {
  return { ca: `${service}_TLS_CA_FILE`, cert: `${service}_TLS_CERT_FILE`, key: `${service}_TLS_KEY_FILE` };
}

/** The variables of both services, with their defaults (the README's table comes from here). */
export const tlsEnvironment = {
  AMQP_TLS_CA_FILE: { default: "the system's CAs", description: "With amqps://: PEM file of the CA certificates RabbitMQ's certificate must chain to (they replace the system's CAs)." },
  AMQP_TLS_CERT_FILE: { default: 'none', description: 'With amqps://: PEM client certificate, for a RabbitMQ that asks for one; needs AMQP_TLS_KEY_FILE.' },
  AMQP_TLS_KEY_FILE: { default: 'none', description: 'With amqps://: the unencrypted PEM private key of AMQP_TLS_CERT_FILE.' },
  REDIS_TLS_CA_FILE: { default: "the system's CAs", description: "With rediss://: PEM file of the CA certificates Redis's certificate must chain to (they replace the system's CAs)." },
  REDIS_TLS_CERT_FILE: { default: 'none', description: 'With rediss://: PEM client certificate, for a Redis that asks for one (tls-auth-clients); needs REDIS_TLS_KEY_FILE.' },
  REDIS_TLS_KEY_FILE: { default: 'none', description: 'With rediss://: the unencrypted PEM private key of REDIS_TLS_CERT_FILE.' },
} as const;

const pemCertificate = /-----BEGIN CERTIFICATE-----/;
const pemKey = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

/** A PEM file of certificates (a CA bundle, a client certificate): read, and checked to hold one. */
export function readCertificates(problems: FileProblems, variable: string, path: string): Buffer | undefined {
  const bytes = problems.file(variable, path);
  if (bytes !== undefined && !pemCertificate.test(bytes.toString('latin1'))) {
    problems.add(`${variable}: ${path} holds no PEM certificate (a line "-----BEGIN CERTIFICATE-----")`);
    return undefined;
  }
  return bytes;
}

function readKey(problems: FileProblems, variable: string, path: string): Buffer | undefined {
  const bytes = problems.file(variable, path);
  if (bytes === undefined) return undefined;
  const text = bytes.toString('latin1');
  if (!pemKey.test(text)) problems.add(`${variable}: ${path} holds no PEM private key (a line "-----BEGIN PRIVATE KEY-----")`);
  else if (/ENCRYPTED/.test(text)) problems.add(`${variable}: ${path} is an encrypted key, and no passphrase can be given; give it unencrypted (openssl pkey -in KEY -out PLAIN_KEY)`);
  else return bytes;
  return undefined;
}

/** Whether the key is the certificate's: a mismatch would otherwise show as a refused handshake. */
function checkPair(problems: FileProblems, names: { cert: string; key: string }, cert: Buffer, key: Buffer): void {
  try {
    if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) problems.add(`${names.key} is not the key of the certificate in ${names.cert}`);
  } catch (error) {
    problems.add(`${names.cert} and ${names.key} cannot be read as a certificate and its key: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * The TLS files of one service, undefined when none is set. Files given for a plain-text URL are
 * a mistake (the user meant TLS and would get none), and so is a certificate without its key.
 */
export function readTlsFiles(service: TlsService, env: Record<string, string | undefined>, problems: FileProblems, url: { variable: string; secure: boolean }): TlsFiles | undefined {
  const names = tlsVariables(service);
  const path = (variable: string): string | undefined => (env[variable] === '' ? undefined : env[variable]);
  const paths = { ca: path(names.ca), cert: path(names.cert), key: path(names.key) };
  const given = Object.entries(names).filter(([field]) => paths[field as keyof typeof paths] !== undefined).map(([, variable]) => variable);
  if (given.length === 0) return undefined;
  if (!url.secure) {
    problems.add(`${given.join(', ')} ${given.length === 1 ? 'is' : 'are'} set but ${url.variable} does not start with ${servers[service].scheme}: TLS files apply to TLS connections only; use ${servers[service].scheme}`);
    return undefined;
  }
  if ((paths.cert === undefined) !== (paths.key === undefined)) {
    const [set, unset] = paths.cert === undefined ? [names.key, names.cert] : [names.cert, names.key];
    problems.add(`${set} is set but ${unset} is not: a client certificate needs its private key, and the other way round`);
  }
  const files: TlsFiles = {};
  if (paths.ca !== undefined) files.ca = readCertificates(problems, names.ca, paths.ca);
  if (paths.cert !== undefined) files.cert = readCertificates(problems, names.cert, paths.cert);
  if (paths.key !== undefined) files.key = readKey(problems, names.key, paths.key);
  if (files.cert !== undefined && files.key !== undefined) checkPair(problems, names, files.cert, files.key);
  return files;
}

/** OpenSSL's "...:SSL routines:FUNCTION:REASON:file:line:..." reduced to its reason. */
function tlsReason(message: string): string {
  return (/SSL routines:[^:]*:([^:]+):/.exec(message)?.[1] ?? message).trim();
}

/** How the connection was made, for describeTlsFailure. */
export interface TlsAttempt {
  /** The URL asked for TLS. */
  secure: boolean;
  /** A client certificate was given. */
  clientCert: boolean;
}

/**
 * A failed TLS handshake with a service, in words that say which variable to check; undefined
 * when `message` is not a TLS failure. `where` is the server's URL without its password.
 */
export function describeTlsFailure(service: TlsService, where: string, message: string, attempt: TlsAttempt = { secure: true, clientCert: true }): string | undefined {
  const { name, url, scheme } = servers[service];
  const names = tlsVariables(service);
  const reason = tlsReason(message);
  if (/self[- ]signed|unable to (get|verify)|certificate (has expired|is not yet valid)|altnames|does not match certificate|CERT_/i.test(message)) {
    return `${name} at ${where} presented a certificate this client does not trust: ${reason} (${names.ca} must name the CA that signed it; unset, the system's CAs are used; the host in ${url} must be one the certificate names)`;
  }
  if (/alert (certificate required|unknown ca|bad certificate|certificate unknown|handshake failure|access denied)|peer did not return a certificate/i.test(message)) {
    return `${name} at ${where} refused this client's certificate: ${reason} (set ${names.cert} and ${names.key} to a certificate signed by a CA the server trusts)`;
  }
  if (/wrong version number|packet length too long|unknown protocol|SSL|TLS/i.test(message)) {
    return `TLS with ${name} at ${where} failed: ${reason} (is that ${name}'s TLS port? ${scheme} needs one)`;
  }
  // With TLS 1.3 a server that wants a client certificate says so after the client's handshake
  // is over: the client's first write may meet the reset before it reads the alert.
  if (attempt.secure && !attempt.clientCert && /ECONNRESET|EPIPE|socket hang up|Socket closed abruptly/i.test(message)) {
    return `${name} at ${where} reset the connection after the TLS handshake (${reason}): it may require a client certificate; set ${names.cert} and ${names.key} to one signed by a CA the server trusts`;
  }
  return undefined;
}
