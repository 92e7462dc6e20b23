/**
 * The git gate's pre-receive hook as git runs it (its own program, ref updates on stdin): what
 * a hostile push can make it write into the bottle's state dir on the host stays bounded.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { audit, MAX_AUDIT_BYTES, MAX_REF_UPDATES } from "../bundle/git-gate/hook.ts"
import { GATE_AUDIT_FILE, GATE_CONFIG_FILE, readGateAudit } from "../src/schema/GitGate.ts"

const MAIN = path.resolve(import.meta.dirname, "../bundle/git-gate/main.ts")
const Z = "0".repeat(40)
const A = "a".repeat(40)

const gateDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-gate-hook-"))
  fs.writeFileSync(path.join(dir, GATE_CONFIG_FILE), JSON.stringify({
    upstreams: [{ name: "w", url: "ssh://git@127.0.0.1:1/w.git", port: 9418, push: { allow: ["refs/heads/bottle/*"], force: false, delete: false, tags: false }, knownHostsFile: "kh" }]
  }))
  return dir
}

describe("git gate hook", () => {
  it(`a push of more than ${MAX_REF_UPDATES} refs is refused whole, and audited as a count (not a list of them)`, () => {
    const dir = gateDir()
    const refs = Array.from({ length: MAX_REF_UPDATES + 1 }, (_, i) => `${Z} ${A} refs/heads/${"x".repeat(200)}-${i}\n`).join("")
    const r = spawnSync(process.execPath, [MAIN, "pre-receive", dir, "w"], { input: refs, encoding: "utf8", timeout: 60_000 })
    expect(r.status, r.stderr).toBe(1)
    expect(r.stderr).toContain(`at most ${MAX_REF_UPDATES} ref updates per push`)
    expect(fs.statSync(path.join(dir, GATE_AUDIT_FILE)).size).toBeLessThan(1000)
    expect(readGateAudit(dir)).toMatchObject([{ verdict: "refused", refs: [] }])
  })

  it("the audit log is rotated past its bound: the host keeps at most two logs' worth", () => {
    const dir = gateDir()
    const entry = { time: new Date().toISOString(), upstream: "w", refs: [{ ref: `refs/heads/${"y".repeat(4000)}`, old: Z, new: A, verdict: "refused" }], verdict: "refused" as const, answer: "not forwarded" }
    const lines = Math.ceil(MAX_AUDIT_BYTES / 4000) * 3
    for (let i = 0; i < lines; i++) audit(dir, entry)
    const log = fs.statSync(path.join(dir, GATE_AUDIT_FILE)).size
    const old = fs.statSync(path.join(dir, `${GATE_AUDIT_FILE}.1`)).size
    expect(log).toBeLessThanOrEqual(MAX_AUDIT_BYTES + 8192)
    expect(old).toBeLessThanOrEqual(MAX_AUDIT_BYTES + 8192)
    expect(fs.readdirSync(dir).sort()).toEqual([GATE_AUDIT_FILE, `${GATE_AUDIT_FILE}.1`, GATE_CONFIG_FILE].sort())
    expect(readGateAudit(dir).length).toBeGreaterThan(0)
  })
})
