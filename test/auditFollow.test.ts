/**
 * `bottle logs --egress -f` reads the audit log as the daemon writes it: lines appended after
 * it started arrive, in order, none twice, across a rotation (the old file is read to its end
 * before the new one), and `history` gives what was there before too.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { AuditLog } from "../bundle/egress/audit.ts"
import { type AuditEntry, followAudit } from "../src/schema/AuditLog.ts"

const entry = (i: number): AuditEntry => ({
  time: new Date(0).toISOString(),
  bottle: "b",
  method: "GET",
  host: "api.example.test",
  path: `/n/${i}`,
  status: 200,
  bytes_in: 0,
  bytes_out: i,
  duration_ms: 0.1,
  decision: "deny",
  rule: "routes[0]"
})

/** Waits (bounded) until `seen` has `n` entries. */
const until = (seen: ReadonlyArray<number>, n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500 && seen.length < n; i++) yield* Effect.sleep("10 millis")
  })

describe("followAudit", () => {
  it.live("streams new lines in order across rotations; history includes the old ones", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-follow-"))
      // Small files: every few lines rotate.
      const log = new AuditLog(dir, { maxBytes: 700, keep: 50 })
      for (let i = 0; i < 3; i++) log.write(entry(i))
      const fresh: Array<number> = []
      const all: Array<number> = []
      const a = yield* Effect.forkChild(followAudit(dir, (e) => fresh.push(e.bytes_out), { everyMs: 5 }))
      const b = yield* Effect.forkChild(followAudit(dir, (e) => all.push(e.bytes_out), { everyMs: 5, history: true }))
      yield* until(all, 3)
      for (let i = 3; i < 40; i++) {
        log.write(entry(i))
        if (i % 7 === 0) yield* Effect.sleep("15 millis")
      }
      yield* until(fresh, 37)
      yield* until(all, 40)
      yield* Fiber.interrupt(a)
      yield* Fiber.interrupt(b)
      yield* Effect.promise(() => log.close())
      assert.isAbove(fs.readdirSync(dir).filter((f) => f.startsWith("audit.log.")).length, 3, "it rotated")
      assert.deepStrictEqual(fresh, Array.from({ length: 37 }, (_, i) => i + 3))
      assert.deepStrictEqual(all, Array.from({ length: 40 }, (_, i) => i))
    }))
})
