/**
 * Shapes of real credentials. The manifest loader rejects a manifest holding one (tokens are
 * referenced by env-var name, never written down), and egress DLP blocks requests carrying one
 * (`secretPatterns` only: `manifestSecretPatterns` adds shapes that are fine on the wire).
 * Patterns are anchored on well-known prefixes so ordinary text does not trip them.
 */
export interface SecretPattern {
  readonly name: string
  readonly regex: RegExp
}

export const secretPatterns: ReadonlyArray<SecretPattern> = [
  { name: "private key block", regex: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/ },
  { name: "Anthropic API key", regex: /\bsk-ant-[A-Za-z0-9_-]{20,}/ },
  { name: "OpenAI API key", regex: /\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}/ },
  { name: "GitHub token", regex: /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}/ },
  { name: "GitHub fine-grained token", regex: /\bgithub_pat_[A-Za-z0-9_]{40,}/ },
  { name: "GitLab token", regex: /\bglpat-[A-Za-z0-9_-]{20,}/ },
  { name: "Slack token", regex: /\bxox[abposr]-[A-Za-z0-9-]{10,}/ },
  { name: "AWS access key id", regex: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { name: "Google API key", regex: /\bAIza[0-9A-Za-z_-]{35}/ },
  { name: "Stripe secret key", regex: /\b[rs]k_live_[0-9A-Za-z]{20,}/ },
  { name: "npm token", regex: /\bnpm_[A-Za-z0-9]{36}/ },
  { name: "JSON web token", regex: /\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/ }
]

/**
 * Credentials in a URL: `scheme://user:password@host`, with a non-empty password that is not a
 * `$VAR` / `${VAR}` placeholder (nor `<password>` or a masked `***`); `user@host` has no
 * password. Manifest-only: egress DLP does not use it, to keep it from misfiring on ordinary
 * HTTP traffic.
 */
const urlCredentials: SecretPattern = {
  name: "password in a URL",
  regex: /\b[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s/:@]*:(?!\$[A-Za-z_][A-Za-z0-9_]*@|\$\{[A-Za-z_][A-Za-z0-9_]*\}@|<[^\s/@>]*>@|\*+@)[^\s/@]+@[^\s/@]/
}

/**
 * What a manifest (and a prompt file) is scanned for: every `secretPatterns` shape, plus shapes
 * that would misfire on HTTP traffic and so are not part of egress DLP.
 */
export const manifestSecretPatterns: ReadonlyArray<SecretPattern> = [...secretPatterns, urlCredentials]

/** The first credential pattern (`manifestSecretPatterns`) `text` matches, if any. */
export const findSecret = (text: string): SecretPattern | undefined => manifestSecretPatterns.find((p) => p.regex.test(text))

/**
 * Every line of `text` (1-based) that holds a credential pattern: the scan of raw text, so
 * comments and front matter are covered too. Only the prefix-anchored patterns are used here;
 * the key/value heuristics below need a key and would misfire on prose.
 */
export const findSecretLines = (text: string): ReadonlyArray<{ readonly line: number; readonly pattern: SecretPattern }> =>
  text.split(/\r?\n/).flatMap((l, i) => {
    const pattern = findSecret(l)
    return pattern ? [{ line: i + 1, pattern }] : []
  })

const secretishKey = /(?:token|secret|password|passwd|api[_-]?key|private[_-]?key|credential)/i

/**
 * Keys that name a secret itself (DB_PASSWORD, GITHUB_TOKEN, apiKey, AWS_SECRET_ACCESS_KEY),
 * as opposed to keys that only mention one (TOKEN_TYPE, GIT_CREDENTIAL_HELPER, token_env,
 * API_TOKEN_FILE): the secret word comes last.
 */
const secretNamingKey = /(?:password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key|secret[_-]?key|access[_-]?key|credentials?)$/i

/** Does `key` name a secret (so its value may only be a reference to one)? */
export const namesSecret = (key: string): boolean => secretNamingKey.test(key)

/**
 * An environment variable's name, as in `token_env: GITHUB_TOKEN`: upper case, and either with
 * an underscore or short. A long run of capitals and digits without one
 * (`ABCDEF0123456789ABCDEF01...`) is key material, not a name.
 */
const isEnvVarName = (v: string): boolean => /^[A-Z_][A-Z0-9_]*$/.test(v) && (v.includes("_") || v.length < 16)

/**
 * A value that points at a secret instead of holding it: empty, an environment variable's name
 * (see isEnvVarName), a `$VAR` / `${VAR}` placeholder (harmless: nothing expands it, the agent
 * sees it as written), or a path (`/run/secrets/db`, `~/.pgpass`, `./secrets/db`).
 */
export const isSecretReference = (value: string): boolean => {
  const v = value.trim()
  return v === "" ||
    isEnvVarName(v) ||
    /^\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})$/.test(v) ||
    /^(?:\/|~\/|\.\.?\/)/.test(v)
}

/**
 * A switch, not a secret: true/false/yes/no/on/off (any case) or an integer of at most 4 digits
 * (`HF_HUB_DISABLE_IMPLICIT_TOKEN: "1"`, `USE_KEYRING_CREDENTIALS: "no"`, `MAX_TOKENS: "4096"`).
 */
export const isFlagValue = (value: string): boolean => /^(?:true|false|yes|no|on|off|[+-]?[0-9]{1,4})$/i.test(value.trim())

/**
 * A literal value under a secret-sounding key. Under a key that names a secret
 * (`DB_PASSWORD: hunter2`), anything but a reference or a flag is refused, however short or
 * plain. Under a key that only mentions one (`GITHUB_TOKEN_NAME: ...`), only what looks like key
 * material: long, no spaces, mixed character classes.
 */
export const looksLikeLiteralSecret = (key: string, value: string): boolean => {
  if (!secretishKey.test(key) || /_env$/i.test(key)) return false
  if (namesSecret(key)) return !isSecretReference(value) && !isFlagValue(value)
  // An environment variable's name (TOKEN_ENV: GITHUB_TOKEN) is how tokens are meant to be named.
  if (isEnvVarName(value)) return false
  if (value.length < 16 || /\s/.test(value)) return false
  if (/^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/.test(value) || value.startsWith("/") || value.startsWith("~")) return false
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((r) => r.test(value)).length
  return classes >= 3 || /^[0-9a-f]{32,}$/i.test(value)
}
