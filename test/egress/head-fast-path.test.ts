/**
 * Response-header redaction's fast path (proxy.ts `headClean`): it may skip the full pass
 * (`redactHead`) only when the full pass would change nothing. Checked exhaustively-ish against the full pass on
 * heads built from pieces of the token (whole, halves, a name, the reason phrase, repeated
 * names, list values), in the three shapes Node hands headers over in.
 */
import { assert, describe, it } from "@effect/vitest"
import { headClean, type Masks, redactHead } from "../../bundle/egress/proxy.ts"

const TOKEN = "tok-0123456789abcdef"
const masks: Masks = { values: [TOKEN], buffers: [Buffer.from(TOKEN, "latin1")] }
const [A, B] = [TOKEN.slice(0, 7), TOKEN.slice(7)]

/** Flat heads: [name, value, name, value, ...]. */
const heads: Array<Array<string | number>> = [
  ["content-type", "text/plain", "content-length", 12, "date", "Mon, 30 Nov 2026 21:00:00 GMT"],
  ["x-echo", TOKEN],
  ["x-a", A, "x-b", B],
  [`x-${A}`, `${B}`],
  [TOKEN, "v"],
  ["x-a", A, "x-other", "!", "x-a", B],
  ["set-cookie", `s.0=${A}; Path=/`, "set-cookie", `s.1=${B}`],
  ["X-A", A, "x-a", B],
  ["x-a", A, "x-b", 1, "x-c", B],
  ["x-a", "only-half " + A]
]

const shapes = (flat: Array<string | number>): Array<unknown> => {
  const pairs: Array<[unknown, unknown]> = []
  for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([flat[i], flat[i + 1]])
  const object: Record<string, unknown> = {}
  for (const [k, v] of pairs) {
    const key = String(k)
    object[key] = key in object ? [object[key], v].flat() : v
  }
  return [[...flat], pairs, object]
}

describe("egress header redaction fast path", () => {
  it("skips only heads the full pass leaves as they are", () => {
    let skipped = 0
    let redacted = 0
    for (const flat of heads) {
      for (const head of shapes(flat)) {
        const before = JSON.stringify(head)
        const clean = headClean(masks, head, undefined)
        redactHead(masks, head)
        const changed = JSON.stringify(head) !== before
        if (clean) {
          skipped++
          assert.isFalse(changed, `fast path skipped a head the full pass redacts: ${before}`)
        }
        if (changed) redacted++
      }
    }
    // Both branches taken: clean heads skipped, and heads with the token redacted.
    assert.isAbove(skipped, 0)
    assert.isAbove(redacted, 0)
  })

  it("sends a head holding the token, whole or split across readings 1 and 2, to the full pass", () => {
    assert.isFalse(headClean(masks, ["x-echo", TOKEN], undefined))
    assert.isFalse(headClean(masks, ["x-a", A, "x-b", B], undefined))
    assert.isFalse(headClean(masks, [`x-${A}`, B], undefined))
    assert.isFalse(headClean(masks, { "x-a": "1" }, `OK ${TOKEN}`))
    assert.isFalse(headClean(masks, [B, "v"], A))
    assert.isTrue(headClean(masks, ["content-type", "text/plain", "content-length", 12], "OK"))
  })

  it("sends a token split across same-name headers or chunked Set-Cookie values (readings 3 and 4) to the full pass", () => {
    assert.isFalse(headClean(masks, ["x-a", A, "x-other", "!", "x-a", B], undefined))
    assert.isFalse(headClean(masks, { "x-a": [A, B] }, undefined))
    // The first piece ends with "Path=/": only its cookie value (up to ";") ends with the token's start.
    assert.isFalse(headClean(masks, ["set-cookie", `s.0=${A}; Path=/`, "x-b", "1", "Set-Cookie", `s.1=${B}; Path=/`], undefined))
    assert.isTrue(headClean(masks, ["set-cookie", "s.0=abc; Path=/", "set-cookie", "s.1=def; Path=/"], undefined))
  })

  it("agrees with the full pass on random heads made of pieces of the token", () => {
    // Deterministic pseudo-random heads: names and values cut from the token, its halves and filler.
    let seed = 42
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const bits = [TOKEN, A, B, TOKEN.slice(0, 1), TOKEN.slice(-1), TOKEN.slice(3, 12), "x", "; Path=/", "=", "set-cookie", "x-a", "ok"]
    const piece = () => Array.from({ length: 1 + next(3) }, () => bits[next(bits.length)]).join("")
    let skipped = 0
    let redacted = 0
    for (let i = 0; i < 3000; i++) {
      const flat: Array<string> = []
      for (let h = next(4); h >= 0; h--) flat.push(next(3) === 0 ? "set-cookie" : piece(), piece())
      const reason = next(2) === 0 ? piece() : undefined
      for (const head of shapes(flat)) {
        const before = JSON.stringify(head)
        // The full pass, on the head and its reason phrase.
        let said = reason
        const cell = reason === undefined ? undefined : { text: reason, mask: undefined, name: undefined, set: (t: string) => (said = t) }
        const clean = headClean(masks, head, reason)
        redactHead(masks, head, cell)
        const changed = JSON.stringify(head) !== before || said !== reason
        if (clean) {
          skipped++
          assert.isFalse(changed, `fast path skipped a head the full pass redacts: ${reason} ${before}`)
        }
        if (changed) redacted++
      }
    }
    assert.isAbove(skipped, 100)
    assert.isAbove(redacted, 100)
  })
})
