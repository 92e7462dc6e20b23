/**
 * The gate's pre-receive hook (the daemon's own program, run as `<node> <daemon> pre-receive
 * <upstream>` by the hook script the daemon writes into each mirror). Git runs it with every
 * ref update the agent pushed, the new objects still in quarantine.
 *
 * Guarantees: every update is checked against the upstream's policy (policy.ts) before
 * anything is sent; if any is refused, none is forwarded and each refusal names the ref and the
 * rule; accepted updates are forwarded to the upstream in one atomic `git push` with the
 * bottle's key, and the mirror's refs move only if the upstream took them (the hook's exit
 * code), so the agent's `git push` reports the upstream's real answer. The URL and key come
 * from the gate's config, never from what the agent sent. Each push is one audit line.
 *
 * The audit log is in the bottle's state dir on the host, and the agent decides how many refs
 * a push names: a push of more than MAX_REF_UPDATES is refused whole (audited as a count), and
 * the log is rotated to `audit.log.1` past MAX_AUDIT_BYTES, so pushes cannot fill the host's disk.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { GATE_AUDIT_FILE, type GateAuditEntry, type GateUpstream } from "../../src/schema/GitGate.ts"
import { checkUpdate, type RefUpdate, ZERO_ID } from "./policy.ts"
import { explainSshFailure, gitEnv, runGit } from "./upstream.ts"

const say = (line: string) => process.stderr.write(`git-gate: ${line}\n`)

/** Ref updates one push may carry; more is refused whole. */
export const MAX_REF_UPDATES = 1000
/** Past this size the audit log moves to `audit.log.1` (one generation kept). */
export const MAX_AUDIT_BYTES = 10 * 1024 * 1024

export const audit = (dir: string, entry: GateAuditEntry) => {
  const file = path.join(dir, GATE_AUDIT_FILE)
  try {
    if (fs.statSync(file).size > MAX_AUDIT_BYTES) fs.renameSync(file, `${file}.1`)
  } catch {
    // No log yet (or a rotation lost to a concurrent push's): append below.
  }
  try {
    fs.appendFileSync(file, JSON.stringify(entry) + "\n", { mode: 0o600 })
  } catch (e) {
    say(`could not write the audit log: ${(e as Error).message}`)
  }
}

const readStdin = (): Promise<string> =>
  new Promise((resolve) => {
    let s = ""
    process.stdin.on("data", (c: Buffer) => (s += c.toString()))
    process.stdin.on("end", () => resolve(s))
    process.stdin.on("error", () => resolve(s))
  })

export const runHook = async (dir: string, u: GateUpstream): Promise<number> => {
  const lines = (await readStdin()).split("\n").filter((l) => l.trim() !== "")
  if (lines.length > MAX_REF_UPDATES) {
    const rule = `at most ${MAX_REF_UPDATES} ref updates per push (this one has ${lines.length})`
    say(`refused the push: ${rule}; nothing was pushed`)
    audit(dir, { time: new Date().toISOString(), upstream: u.name, refs: [], verdict: "refused", answer: `not forwarded: ${rule}` })
    return 1
  }
  const updates: Array<RefUpdate> = []
  for (const line of lines) {
    const [old, nu, ref] = line.split(" ")
    if (!old || !nu || !ref) continue
    const fastForward = ZERO_ID.test(old) || ZERO_ID.test(nu)
      ? true
      : (await runGit(["merge-base", "--is-ancestor", old, nu], { env: process.env })).code === 0
    updates.push({ ref, old, new: nu, fastForward })
  }
  const verdicts = updates.map((up) => ({ up, v: checkUpdate(u.push, up) }))
  const refs = verdicts.map(({ up, v }) => ({ ref: up.ref, old: up.old, new: up.new, verdict: v.ok ? "accepted" : "refused", ...(v.ok ? {} : { rule: v.rule }) }))
  const time = new Date().toISOString()
  const refused = verdicts.filter((x) => !x.v.ok)
  if (refused.length > 0) {
    for (const { up, v } of refused) if (!v.ok) say(`refused ${up.ref}: ${v.rule}`)
    if (refused.length < verdicts.length) say("nothing was pushed (a push goes through whole or not at all)")
    audit(dir, { time, upstream: u.name, refs, verdict: "refused", answer: "not forwarded" })
    return 1
  }
  if (updates.length === 0) return 0
  const refspecs: Array<string> = []
  const leases: Array<string> = []
  for (const up of updates) {
    if (ZERO_ID.test(up.new)) refspecs.push(`:${up.ref}`)
    else if (!up.fastForward || up.ref.startsWith("refs/tags/")) {
      refspecs.push(`+${up.new}:${up.ref}`)
      // Forced only over what the agent saw: a ref moved upstream since is not overwritten.
      leases.push(`--force-with-lease=${up.ref}:${ZERO_ID.test(up.old) ? "" : up.old}`)
    } else refspecs.push(`${up.new}:${up.ref}`)
  }
  const pushed = await runGit(["push", "--atomic", "--porcelain", ...leases, u.url, ...refspecs], { env: gitEnv(dir, u, process.env), timeoutMs: 300_000 })
  const answer = pushed.output.trim()
  if (pushed.code !== 0) {
    for (const l of answer.split("\n")) if (l.trim()) say(`upstream: ${l}`)
    const why = explainSshFailure(u, answer)
    say(why ?? `the upstream ${u.name} refused the push (its answer is above); nothing changed there`)
    audit(dir, { time, upstream: u.name, refs, verdict: "upstream-failed", answer: why ?? answer })
    return 1
  }
  say(`forwarded to ${u.name}: ${updates.map((x) => x.ref).join(", ")}`)
  audit(dir, { time, upstream: u.name, refs, verdict: "pushed", answer })
  return 0
}
