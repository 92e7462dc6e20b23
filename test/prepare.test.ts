/** prepare: pure resolution, and the refusals that must happen before anything is shown or run. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { make } from "../src/layers/StateStore.ts"
import { parseManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"
import { StateStore } from "../src/services/StateStore.ts"

const mounted = `agents:\n  a: { bottle: b, prompt: "Be careful." }\nbottles:\n  b:\n    workspace: { mount_cwd: true }\n`

const planIn = (cwd: string, stateRoot: string, yaml = mounted) =>
  Effect.gen(function*() {
    const loaded = yield* parseManifest(yaml, path.join(cwd, "bottle.yaml"), cwd)
    return yield* prepare({ loaded, agent: "a", cwd, env: {} })
  }).pipe(Effect.provide(Layer.succeed(StateStore, make(stateRoot))))

describe("prepare", () => {
  it.effect("passes a non-empty prompt to Claude Code by file, and writes nothing", () =>
    Effect.gen(function*() {
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-prep-"))
      const root = fs.mkdtempSync(path.join(os.tmpdir(), "bb-prep-state-"))
      const plan = yield* planIn(cwd, root)
      assert.deepStrictEqual(plan.command, ["claude", "--append-system-prompt-file", "/home/node/.bottle/prompt.md"])
      assert.strictEqual(plan.mountCwd, true)
      assert.deepStrictEqual(fs.readdirSync(root), [], "prepare writes nothing")
    }))

  it.effect("refuses to mount a directory that holds bot-bottle's state", () =>
    Effect.gen(function*() {
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-prep-"))
      const err = yield* Effect.flip(planIn(cwd, path.join(cwd, ".local", "state", "bot-bottle")))
      assert.include(err.message, "refusing to mount")
      assert.include(err.message, "bot-bottle's state")
      assert.include(err.message, "workspace.mount_cwd")
    }))

  it.effect("refuses to mount the home directory or the filesystem root", () =>
    Effect.gen(function*() {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), "bb-prep-state-"))
      assert.include((yield* Effect.flip(planIn(os.homedir(), root))).message, "your home directory")
      assert.include((yield* Effect.flip(planIn("/", root))).message, "the filesystem root")
    }))
})
