/**
 * Data-loss prevention: finds the daemon's own tokens and well-known credential shapes in
 * what the agent sends, and redacts injected tokens that a response echoes back.
 *
 * Guarantees:
 * - `BodyScanner` never lets the last byte of a match leave: it holds back `window - 1` bytes
 *   (window ≥ 3 × the longest token form and ≥ 256: a percent-encoded form takes up to three
 *   bytes a character), so a secret split across chunks, raw or `%XX`-encoded, is seen whole
 *   before any chunk completing it is released. Memory per request is bounded by the window.
 * - Text is scanned as sent and, when it holds an escape, percent-decoded once (`%XX`, and `+`
 *   as a space: form bodies, queries, cookies). The decoder is lenient (a malformed escape is
 *   kept as text), so one bad escape cannot switch decoding off for the rest.
 * - Hex forms match in any mix of cases.
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
  /** `value` is lower case and is looked for in the lower-cased text (hex: any mix of cases). */
  readonly caseless?: boolean | undefined
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
 * The DLP scan set: each token plus, for tokens ≥ MIN_ENCODED_TOKEN, its hex (any case) and
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
    add({ env: t.env, value: bytes.toString("hex"), form: "hex", caseless: true })
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

/** Finds a held token (other than the allowed ones) or a credential pattern in `text` as it is. */
export const scanText = (text: string, tokens: ReadonlyArray<HeldToken>, allowedEnv: string | undefined): Finding | undefined => {
  let lower: string | undefined
  for (const t of tokens) {
    if (t.env === allowedEnv || t.value.length < MIN_SCANNED_TOKEN) continue
    if ((t.caseless ? (lower ??= text.toLowerCase()) : text).includes(t.value)) return { _tag: "Token", env: t.env, form: t.form }
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

const HEX_VALUE = (c: number): number =>
  c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1

/**
 * `text` with every `%XX` decoded to the byte it names (as a latin1 character, like the body
 * scan reads bytes) and, with `plus`, `+` as a space (form encoding). Lenient: a `%` not
 * followed by two hex digits stays as it is. Decodes once (`%2541` → `%41`).
 */
export const percentDecode = (text: string, plus: boolean): string =>
  decodeEscapes(plus && text.includes("+") ? text.replaceAll("+", " ") : text, undefined)

/** `%XX` decoded; the decoded characters' positions pushed to `marks` when given. */
const decodeEscapes = (source: string, marks: Array<number> | undefined): string => {
  let out = ""
  let from = 0
  // Jump from `%` to `%` (native search): bodies are long and escapes comparatively rare.
  for (let i = source.indexOf("%"); i !== -1 && i + 2 < source.length; i = source.indexOf("%", i + 1)) {
    const hi = HEX_VALUE(source.charCodeAt(i + 1))
    const lo = hi === -1 ? -1 : HEX_VALUE(source.charCodeAt(i + 2))
    if (lo === -1) continue
    out += source.slice(from, i)
    marks?.push(out.length)
    out += String.fromCharCode(hi * 16 + lo)
    i += 2
    from = i + 1
  }
  return from === 0 ? source : out + source.slice(from)
}

/**
 * What the decoding scan needs to know of a needle set, worked out once per set (a policy's
 * needles live as long as the policy): does some needle hold a space (only then can decoding
 * `+` reveal one), and how far from a decoded character a match that uses it can reach
 * (needles; credential shapes).
 */
const needleFacts = new WeakMap<ReadonlyArray<HeldToken>, { readonly space: boolean; readonly reach: number }>()
const factsOf = (tokens: ReadonlyArray<HeldToken>) => {
  let facts = needleFacts.get(tokens)
  if (facts === undefined) {
    facts = { space: tokens.some((t) => t.value.includes(" ")), reach: Math.max(256, ...tokens.map((t) => t.value.length)) }
    needleFacts.set(tokens, facts)
  }
  return facts
}

/**
 * Text as sent and, when it holds an escape that could hide a needle, percent-decoded
 * (a token or credential spelled `%72%65…` in a form body, query, path or cookie). Anything
 * found only after decoding uses a decoded character: when escapes are sparse (binary data
 * has a few by chance), only the stretches around them are scanned again.
 */
export const scanDecoded = (text: string, tokens: ReadonlyArray<HeldToken>, allowedEnv: string | undefined, plus = factsOf(tokens).space): Finding | undefined => {
  const found = scanText(text, tokens, allowedEnv)
  if (found) return found
  const pluses = plus && text.includes("+")
  if (!pluses && !text.includes("%")) return undefined
  if (pluses) {
    const decoded = percentDecode(text, true)
    return decoded === text ? undefined : scanText(decoded, tokens, allowedEnv)
  }
  const marks: Array<number> = []
  const decoded = decodeEscapes(text, marks)
  if (marks.length === 0) return undefined
  const reach = factsOf(tokens).reach
  if (marks.length * 2 * reach >= decoded.length) return scanText(decoded, tokens, allowedEnv)
  // Merged stretches [mark - reach, mark + reach) around each decoded character.
  let lo = Math.max(0, marks[0]! - reach)
  let hi = Math.min(decoded.length, marks[0]! + reach)
  for (let i = 1; i <= marks.length; i++) {
    const m = marks[i]
    if (m !== undefined && m - reach <= hi) {
      hi = Math.min(decoded.length, m + reach)
      continue
    }
    const inStretch = scanText(decoded.slice(lo, hi), tokens, allowedEnv)
    if (inStretch) return inStretch
    if (m === undefined) break
    lo = Math.max(0, m - reach)
    hi = Math.min(decoded.length, m + reach)
  }
  return undefined
}

/** URL text as sent and percent-decoded (an agent may encode a token to slip it past). */
export const scanUrl = (pathAndQuery: string, tokens: ReadonlyArray<HeldToken>, allowedEnv: string | undefined): Finding | undefined =>
  scanDecoded(pathAndQuery, tokens, allowedEnv, true)

/** Hold-back window: a needle percent-encoded takes up to three bytes per character. */
export const scanWindowFor = (tokens: ReadonlyArray<HeldToken>): number => Math.max(256, ...tokens.map((t) => 3 * t.value.length))

/**
 * Streaming scan of a request body. `push` returns the bytes that are safe to forward now
 * (everything but the held-back tail) or a finding; `end` scans and releases the tail.
 */
export class BodyScanner {
  private held: Buffer = Buffer.alloc(0)
  private readonly keep: number
  private readonly tokens: ReadonlyArray<HeldToken>
  private readonly allowedEnv: string | undefined
  private readonly plus: boolean
  bytes = 0

  constructor(tokens: ReadonlyArray<HeldToken>, allowedEnv: string | undefined, window: number) {
    this.tokens = tokens
    this.allowedEnv = allowedEnv
    this.keep = window - 1
    this.plus = factsOf(tokens).space
  }

  push(chunk: Buffer): Buffer | Finding {
    this.bytes += chunk.length
    const all = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk])
    // latin1 maps bytes 1:1 to code units: ASCII secrets are found in any encoding of the rest.
    // Decoded too (a form body's `%XX`): the window holds a whole encoded needle, and a `%XX`
    // cut at the window's start only changes the first two characters, before any match.
    const found = scanDecoded(all.toString("latin1"), this.tokens, this.allowedEnv, this.plus)
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
