/**
 * The skill size limits at their edges: a skill directory of exactly 500 files or 20 MB is
 * copied; one file or one byte more is refused, naming the limits. (Raising either limit makes
 * these fail; the limits bound what a hostile manifest can copy into the sandbox.)
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { make } from "../src/layers/StateStore.ts"
import { parseManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"
import { StateStore } from "../src/services/StateStore.ts"

const MB = 1024 * 1024

/** Plans an agent whose one skill is `./skill` in a fresh cwd that `fill` populates. */
const planWithSkill = (fill: (dir: string) => void) =>
  Effect.gen(function*() {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-skill-limits-"))
    const dir = path.join(cwd, "skill")
    fs.mkdirSync(dir)
    fill(dir)
    const yaml = `agents:\n  a: { bottle: b, skills: ["./skill"] }\nbottles:\n  b: {}\n`
    const loaded = yield* parseManifest(yaml, path.join(cwd, "bottle.yaml"), cwd)
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "bb-skill-limits-state-"))
    return yield* prepare({ loaded, agent: "a", cwd, env: {} }).pipe(Effect.provide(Layer.succeed(StateStore, make(root))))
  })

const files = (n: number) => (dir: string) => {
  fs.mkdirSync(path.join(dir, "sub"))
  for (let i = 0; i < n; i++) fs.writeFileSync(path.join(dir, i % 2 ? "sub" : ".", `f${i}.md`), "x\n")
}

/** `total` bytes in one sparse file (over the scanned size, so it is not read). */
const bytes = (total: number) => (dir: string) => {
  const big = path.join(dir, "big.bin")
  fs.writeFileSync(big, "")
  fs.truncateSync(big, total)
}

const LIMIT_MESSAGE = "more than 500 files or 20 MB"

describe("prepare: skill limits", () => {
  it.effect("500 files are copied; 501 are refused, naming the limits", () =>
    Effect.gen(function*() {
      const ok = yield* planWithSkill(files(500))
      assert.deepStrictEqual(ok.skills.map((s) => s.name), ["skill"])
      const err = yield* Effect.flip(planWithSkill(files(501)))
      assert.include(err.message, "agents.a.skills[0]")
      assert.include(err.message, LIMIT_MESSAGE)
    }))

  it.effect("20 MB are copied; 20 MB and one byte are refused, naming the limits", () =>
    Effect.gen(function*() {
      const ok = yield* planWithSkill(bytes(20 * MB))
      assert.deepStrictEqual(ok.skills.map((s) => s.name), ["skill"])
      const err = yield* Effect.flip(planWithSkill(bytes(20 * MB + 1)))
      assert.include(err.message, LIMIT_MESSAGE)
    }))
})
