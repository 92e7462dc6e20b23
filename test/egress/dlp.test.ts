/**
 * The DLP scanner on its own: a percent-encoded token cut at every byte between two chunks of
 * a streamed body is found before the chunk completing it is released; the decoder is lenient
 * and decodes once.
 */
import { assert, describe, it } from "vitest"
import { BodyScanner, percentDecode, scanDecoded, scanSetFor, scanUrl, scanWindowFor } from "../../bundle/egress/dlp.ts"

const TOKEN = "other-secret-token-fedcba9876543210"
const needles = scanSetFor([{ env: "OTHER_TOKEN", value: TOKEN }])
const pct = (s: string): string => [...Buffer.from(s)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join("")

describe("egress DLP scanner", () => {
  it("finds a %XX-encoded token cut anywhere across two chunks, and releases no byte that completes it", () => {
    const body = `${"x".repeat(5000)}&t=${pct(TOKEN)}&${"y".repeat(3000)}`
    const start = body.indexOf("%")
    const end = start + pct(TOKEN).length
    for (let cut = start; cut <= end; cut++) {
      const scanner = new BodyScanner(needles, undefined, scanWindowFor(needles))
      const first = scanner.push(Buffer.from(body.slice(0, cut)))
      if (!Buffer.isBuffer(first)) {
        assert.strictEqual(cut, end, "found early only once the whole token is in")
        continue
      }
      // What left must not hold the whole token (decoded) nor reach its last byte.
      assert.isBelow(first.length, end, `cut ${cut}: released up to the token's end`)
      const second = scanner.push(Buffer.from(body.slice(cut)))
      assert.isFalse(Buffer.isBuffer(second), `cut ${cut}: not found`)
      if (!Buffer.isBuffer(second)) assert.strictEqual(second._tag === "Token" && second.env, "OTHER_TOKEN")
    }
  })

  it("decodes leniently and once; a malformed escape does not switch decoding off", () => {
    assert.strictEqual(percentDecode("a%41%zz%4+b%", false), "aA%zz%4+b%")
    assert.strictEqual(percentDecode("a+b%2541", true), "a b%41")
    assert.isDefined(scanUrl(`/x?bad=%zz&t=${pct(TOKEN)}`, needles, undefined))
    assert.isUndefined(scanUrl(`/x?bad=%zz&t=${pct("not a token at all")}`, needles, undefined))
  })

  it("in a long text with few escapes (only the stretches around them are scanned again), an encoded token is found", () => {
    const filler = "x".repeat(60_000)
    // A stray escape far away, the token encoded in the middle (cut into two stretches' reach).
    const text = `%41${filler}${pct(TOKEN.slice(0, 10))}${TOKEN.slice(10)}${filler}`
    assert.isUndefined(scanDecoded(text.replace(pct(TOKEN.slice(0, 10)), "z".repeat(30)), needles, undefined))
    const found = scanDecoded(text, needles, undefined)
    assert.isTrue(found?._tag === "Token" && found.env === "OTHER_TOKEN", JSON.stringify(found))
    // The same token split by decoded characters at both ends of a long stretch.
    const ends = `${filler}${pct(TOKEN[0]!)}${TOKEN.slice(1, -1)}${pct(TOKEN.at(-1)!)}${filler}%42`
    assert.isDefined(scanDecoded(ends, needles, undefined))
  })
})
