/**
 * The audit log gathers lines for a few ms and appends them in one write: nothing is lost or
 * reordered, rotation keeps every line, a lone line still reaches the file on its own, a
 * refusal is on disk at once, and what is pending survives the process dying of an uncaught
 * exception.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { AuditLog, FLUSH_MS } from "../../bundle/egress/audit.ts"
import type { AuditEntry } from "../../src/schema/AuditLog.ts"

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
  decision: "allow",
  rule: "routes[0]"
})

const linesOf = (dir: string, file: string) =>
  fs.readFileSync(path.join(dir, file), "utf8").split("\n").filter((l) => l.length > 0).map((l) => (JSON.parse(l) as AuditEntry).bytes_out)

describe("audit log", () => {
  it("a burst of lines arrives whole and in order, across rotations, once closed", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-audit-"))
    const log = new AuditLog(dir, { maxBytes: 20_000, keep: 50 })
    for (let i = 0; i < 2000; i++) log.write(entry(i))
    await log.close()
    const files = fs.readdirSync(dir).filter((f) => f.startsWith("audit.log"))
    assert.isAbove(files.length, 2)
    // Oldest first: audit.log.N … audit.log.1, then audit.log.
    const ordered = [...files.filter((f) => f !== "audit.log").sort((a, b) => Number(b.split(".").pop()) - Number(a.split(".").pop())), "audit.log"]
    const all = ordered.flatMap((f) => linesOf(dir, f))
    assert.deepStrictEqual(all, Array.from({ length: 2000 }, (_, i) => i))
    for (const f of files) assert.isAtMost(fs.statSync(path.join(dir, f)).size, 20_000)
  })

  it("a lone line reaches the file within a few flush intervals, without close", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-audit-"))
    const log = new AuditLog(dir)
    log.write(entry(7))
    const deadline = Date.now() + FLUSH_MS * 50
    while (Date.now() < deadline && !(fs.existsSync(path.join(dir, "audit.log")) && fs.statSync(path.join(dir, "audit.log")).size > 0)) {
      await new Promise((r) => setTimeout(r, 5))
    }
    assert.deepStrictEqual(linesOf(dir, "audit.log"), [7])
    await log.close()
  })

  it("a refusal is on disk when write returns; an allow line waits for its batch", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-audit-"))
    const log = new AuditLog(dir)
    log.write(entry(1))
    assert.strictEqual(fs.statSync(path.join(dir, "audit.log")).size, 0, "an allow line is batched")
    log.write({ ...entry(2), decision: "deny", status: 403 })
    // The refusal, and the allow line pending before it, in order.
    assert.deepStrictEqual(linesOf(dir, "audit.log"), [1, 2])
    void log.close()
  })

  it("an uncaught exception in the process still writes the pending batch", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-audit-"))
    const module = path.join(import.meta.dirname, "..", "..", "bundle", "egress", "audit.ts")
    const script = `import { AuditLog } from ${JSON.stringify(module)}
const log = new AuditLog(${JSON.stringify(dir)})
log.write(${JSON.stringify(entry(42))})
setImmediate(() => { throw new Error("boom") })`
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" })
    assert.strictEqual(r.status, 1, r.stderr)
    assert.include(r.stderr, "boom")
    assert.deepStrictEqual(linesOf(dir, "audit.log"), [42])
  })
})
