/**
 * Response-header redaction's fast path (proxy.ts `headClean`): it may skip the full pass only
 * when the full pass would change nothing. Checked exhaustively-ish against the full pass on
 * heads built from pieces of the token (whole, halves, a name, the reason phrase, repeated
 * names, list values), in the three shapes Node hands headers over in.
 */
import { assert, describe, it } from "@effect/vitest"
import { headClean, type Masks, redactHeaders } from "../../bundle/egress/proxy.ts"

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
        redactHeaders(masks, head)
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

  it("sends repeated names and list values to the full pass (readings 3 and 4)", () => {
    assert.isFalse(headClean(masks, ["x-a", "1", "X-A", "2"], undefined))
    assert.isFalse(headClean(masks, { "set-cookie": ["a=1", "b=2"] }, undefined))
    assert.isFalse(headClean(masks, [["x-a", "1"], ["x-a", "2"]], undefined))
  })
})
