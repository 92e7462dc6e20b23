/**
 * Data-loss prevention: finds the daemon's own tokens and well-known credential shapes in
 * what the agent sends, and redacts injected tokens that a response echoes back.
 *
 * Guarantees:
 * - `BodyScanner` never lets the last byte of a match leave: it holds back `window - 1` bytes
 *   (window ≥ the longest token and ≥ 256), so a secret split across chunks is seen whole
 *   before any chunk completing it is released. Memory per request is bounded by the window.
 * - `Redactor` holds back only a suffix that could still become a token, so a server-sent
 *   event that ends in "\n\n" is released at once (SSE latency is unaffected).
 * - Findings name the token's env var or the pattern, never the value.
 */
import { secretPatterns } from "../../src/schema/SecretPatterns.ts"

export interface HeldToken {
  /** Env var the value came from (what findings and logs name). */
  readonly env: string
  readonly value: string
  /** For a derived needle: the encoding of the token it is (`base64`, `hex`). */
  readonly form?: string | undefined
}

export type Finding =
  | { readonly _tag: "Token"; readonly env: string; readonly form?: string | undefined }
  | { readonly _tag: "Pattern"; readonly name: string }

export const describeFinding = (f: Finding): string =>
  f._tag === "Token"
    ? `${f.form ? `the ${f.form} form of ` : ""}the value of $${f.env} (a token egress holds for another route)`
    : `a credential (${f.name})`

/** Tokens at least this long are also looked for in base64 and hex. */
export const MIN_ENCODED_TOKEN = 16

/**
 * The DLP scan set: each token plus, for tokens ≥ MIN_ENCODED_TOKEN, its hex (both cases) and
 * base64/base64url forms at the three byte alignments a token can have inside a longer
 * encoded text (only the characters that do not depend on the neighbouring bytes). Computed
 * once per policy, never per request.
 */
export const scanSetFor = (tokens: ReadonlyArray<HeldToken>): ReadonlyArray<HeldToken> => {
  const out: Array<HeldToken> = []
  const seen = new Set<string>()
  const add = (t: HeldToken) => {
    if (seen.has(t.value)) return
    seen.add(t.value)
    out.push(t)
  }
  for (const t of tokens) add(t)
  for (const t of tokens) {
    if (t.value.length < MIN_ENCODED_TOKEN) continue
    const bytes = Buffer.from(t.value, "utf8")
    const hex = bytes.toString("hex")
    add({ env: t.env, value: hex, form: "hex" })
    add({ env: t.env, value: hex.toUpperCase(), form: "hex" })
    for (let k = 0; k < 3; k++) {
      const rest = bytes.subarray(k)
      const whole = Math.floor(rest.length / 3) * 4
      const b64 = rest.toString("base64").slice(0, whole)
      add({ env: t.env, value: b64, form: "base64" })
      add({ env: t.env, value: b64.replace(/\+/g, "-").replace(/\//g, "_"), form: "base64" })
    }
  }
  return out
}

/** Tokens shorter than this are not scanned for: they would match ordinary text. */
export const MIN_SCANNED_TOKEN = 8

/** Finds a held token (other than the allowed ones) or a credential pattern in `text`. */
export const scanText = (text: string, tokens: ReadonlyArray<HeldToken>, allowedEnv: string | undefined): Finding | undefined => {
  for (const t of tokens) {
    if (t.env !== allowedEnv && t.value.length >= MIN_SCANNED_TOKEN && text.includes(t.value)) return { _tag: "Token", env: t.env, form: t.form }
  }
  for (const p of secretPatterns) {
    if (p.regex.test(text)) {
      // A route's own token may look like a known credential shape: that is not a leak.
      if (allowedEnv !== undefined && tokens.some((t) => t.env === allowedEnv && p.regex.test(t.value) && text.includes(t.value))) {
        const stripped = tokens.filter((t) => t.env === allowedEnv).reduce((s, t) => s.split(t.value).join(""), text)
        if (!p.regex.test(stripped)) continue
      }
      return { _tag: "Pattern", name: p.name }
    }
  }
  return undefined
}

/** URL text as sent and percent-decoded (an agent may encode a token to slip it past). */
export const scanUrl = (pathAndQuery: string, tokens: ReadonlyArray<HeldToken>, allowedEnv: string | undefined): Finding | undefined => {
  const found = scanText(pathAndQuery, tokens, allowedEnv)
  if (found) return found
  let decoded = pathAndQuery
  try {
    decoded = decodeURIComponent(pathAndQuery.replace(/\+/g, " "))
  } catch {
    // Malformed escapes: the raw text was scanned already.
  }
  return decoded === pathAndQuery ? undefined : scanText(decoded, tokens, allowedEnv)
}

export const scanWindowFor = (tokens: ReadonlyArray<HeldToken>): number => Math.max(256, ...tokens.map((t) => t.value.length))

/**
 * Streaming scan of a request body. `push` returns the bytes that are safe to forward now
 * (everything but the held-back tail) or a finding; `end` scans and releases the tail.
 */
export class BodyScanner {
  private held: Buffer = Buffer.alloc(0)
  private readonly keep: number
  private readonly tokens: ReadonlyArray<HeldToken>
  private readonly allowedEnv: string | undefined
  bytes = 0

  constructor(tokens: ReadonlyArray<HeldToken>, allowedEnv: string | undefined, window: number) {
    this.tokens = tokens
    this.allowedEnv = allowedEnv
    this.keep = window - 1
  }

  push(chunk: Buffer): Buffer | Finding {
    this.bytes += chunk.length
    const all = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk])
    // latin1 maps bytes 1:1 to code units: ASCII secrets are found in any encoding of the rest.
    const found = scanText(all.toString("latin1"), this.tokens, this.allowedEnv)
    if (found) return found
    const cut = Math.max(0, all.length - this.keep)
    this.held = Buffer.from(all.subarray(cut))
    return all.subarray(0, cut)
  }

  end(): Buffer {
    const rest = this.held
    this.held = Buffer.alloc(0)
    return rest
  }
}

/** The held tail when nothing is held (shared, never written to). */
const EMPTY: Buffer = Buffer.alloc(0)

/**
 * Streaming redaction of held tokens in a response body. Replaces each occurrence with `*`
 * of the same length (so Content-Length stays right) and holds back only a tail that is a
 * proper prefix of some token.
 */
export class Redactor {
  private held: Buffer = EMPTY
  private readonly needles: ReadonlyArray<Buffer>
  private readonly maxLen: number
  redactions = 0

  constructor(tokens: ReadonlyArray<HeldToken>) {
    this.needles = tokens.filter((t) => t.value.length >= MIN_SCANNED_TOKEN).map((t) => Buffer.from(t.value, "latin1"))
    this.maxLen = Math.max(0, ...this.needles.map((n) => n.length))
  }

  get active(): boolean {
    return this.needles.length > 0
  }

  push(chunk: Buffer): Buffer {
    let all = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk])
    let copied = false
    // Per chunk of a stream: no iterator, and no allocation unless a token is found or held.
    const needles = this.needles
    for (let k = 0; k < needles.length; k++) {
      const n = needles[k]!
      let at = all.indexOf(n)
      while (at !== -1) {
        if (!copied) {
          all = Buffer.from(all)
          copied = true
        }
        all.fill(0x2a, at, at + n.length)
        this.redactions++
        at = all.indexOf(n, at + n.length)
      }
    }
    const cut = this.partialTail(all)
    this.held = cut === all.length ? EMPTY : Buffer.from(all.subarray(cut))
    return cut === all.length ? all : all.subarray(0, cut)
  }

  end(): Buffer {
    const rest = this.held
    this.held = EMPTY
    return rest
  }

  /** Index where a suffix that could still grow into a token starts (or length: none). */
  private partialTail(buf: Buffer): number {
    const needles = this.needles
    const from = Math.max(0, buf.length - this.maxLen + 1)
    for (let i = from; i < buf.length; i++) {
      const len = buf.length - i
      const b = buf[i]
      for (let k = 0; k < needles.length; k++) {
        const n = needles[k]!
        if (len < n.length && b === n[0] && buf.compare(n, 0, len, i, buf.length) === 0) return i
      }
    }
    return buf.length
  }
}
