/**
 * The whole bad-manifest corpus through the built CLI, as a user meets it: `bottle plan <agent>
 * --manifest FILE` from an empty directory must exit non-zero with exactly one line on stderr,
 * naming the file, the line, the key path and what was expected (the same expectations the
 * loader test checks, from the fixtures' headers).
 *
 * The runs are started together, a few at a time, so the corpus costs about one CLI start per
 * core.
 */
import * as os from "node:os"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { type BadManifest, badManifests } from "./fixtures/manifests/corpus.ts"
import { bottleAsync, lines, NO_ENGINE, prepareCli, type Run } from "./support/cli.ts"

const corpus = badManifests()
const runs = new Map<string, Run>()

beforeAll(async () => {
  const cliDir = prepareCli()
  // A few at a time: more processes than cores only makes each start slower.
  const queue = [...corpus]
  const worker = async () => {
    for (let c = queue.shift(); c !== undefined; c = queue.shift()) {
      runs.set(c.name, await bottleAsync(cliDir, ["plan", c.agent, "--manifest", c.file], NO_ENGINE))
    }
  }
  await Promise.all(Array.from({ length: Math.max(2, os.availableParallelism()) }, worker))
}, 180_000)

describe("bottle plan --manifest <bad manifest>", () => {
  it("covers the corpus", () => {
    assert.isAtLeast(corpus.length, 30)
    assert.strictEqual(runs.size, corpus.length)
  })

  for (const c of corpus) {
    it(`${c.name}: exit ≠ 0, one line naming the file, line and key path`, () => {
      const r = runs.get(c.name)
      assert.isDefined(r, "was run")
      const { status, stdout, stderr } = r!
      assert.notStrictEqual(status, 0, stderr)
      assert.isNotNull(status, "exited (not killed)")
      assert.strictEqual(stdout, "", "nothing on stdout")
      const out = lines(stderr)
      assert.lengthOf(out, 1, stderr)
      assert.isTrue(out[0]!.startsWith(`bottle: ${where(c)}`), `file and line ${where(c)} in: ${out[0]}`)
      const rest = out[0]!.slice(`bottle: ${where(c)}`.length).replace(/^\d+:/, "").trimStart()
      if (c.expect.path) assert.isTrue(rest.startsWith(`${c.expect.path}: `), `key path ${c.expect.path} in: ${out[0]}`)
      assert.include(rest, c.expect.message)
    })
  }
})

/** `FILE:LINE:`, the prefix every located problem starts with (a column may follow). */
const where = (c: BadManifest) => `${c.expect.file}:${c.expect.line}:`
