/**
 * Text that came from the log but not through a decider (a message that does not decode, or the
 * reason it does not) may hold anything its writer put there. Before it is stored in the read
 * model or shown to an operator, everything shaped like a secret is replaced.
 */

/** A key name that says its value is a secret: `"apiToken": "…"`, `HCLOUD_TOKEN=…`. */
const SECRET_KEY = '[A-Za-z0-9_.-]*(?:token|secret|passw(?:or)?d|api[_-]?key|private[_-]?key|authorization|credentials?)[A-Za-z0-9_.-]*';
const REDACTIONS: Array<[RegExp, string]> = [
  [/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g, '[redacted private key]'],
  [/\b(Bearer|Basic)\s+[^\s"']+/gi, '$1 [redacted]'],
  [new RegExp(`("${SECRET_KEY}"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`, 'gi'), '$1"[redacted]"'],
  [new RegExp(`\\b(${SECRET_KEY})(\\s*[=:]\\s*)[^\\s"',;&]+`, 'gi'), '$1$2[redacted]'],
  // Long opaque strings are how API tokens and key material look (a Hetzner token is 64 characters).
  [/[A-Za-z0-9+/_=]{32,}/g, '[redacted]'],
];

/** Private keys, bearer/basic credentials, values of secret-named keys and long opaque strings, replaced. */
export const redactStoredText = (text: string): string => REDACTIONS.reduce((acc, [pattern, replacement]) => acc.replace(pattern, replacement), text);
