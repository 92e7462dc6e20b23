/**
 * The git gate's push policy, as a pure function of one ref update: the manifest's `allow`
 * ref patterns, `force`, `delete` and `tags`. A refusal names the ref and the rule.
 *
 * Patterns are git refspec globs: `*` matches any run of characters, `/` included
 * (`refs/heads/bottle/*` allows `refs/heads/bottle/a/b`). Tags (refs/tags/…) are governed by
 * `tags` alone; moving an existing tag is a force push, removing one a deletion.
 */
import type { GatePushPolicy } from "../../src/schema/GitGate.ts"

export const ZERO_ID = /^0+$/u

export interface RefUpdate {
  readonly ref: string
  readonly old: string
  readonly new: string
  /** The new commit descends from the old one (irrelevant for creations and deletions). */
  readonly fastForward: boolean
}

export type Verdict = { readonly ok: true } | { readonly ok: false; readonly rule: string }

const globToRegExp = (pattern: string) =>
  new RegExp(`^${pattern.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/gu, "\\$&")).join(".*")}$`, "u")

export const matchesAllow = (policy: GatePushPolicy, ref: string): boolean => policy.allow.some((p) => globToRegExp(p).test(ref))

export const checkUpdate = (policy: GatePushPolicy, u: RefUpdate): Verdict => {
  const creating = ZERO_ID.test(u.old)
  const deleting = ZERO_ID.test(u.new)
  // git itself refuses such names; the gate never forwards one whatever git says.
  if (!/^refs\/[A-Za-z0-9._\/-]+$/u.test(u.ref) || u.ref.includes("..") || u.ref.endsWith(".lock")) {
    return { ok: false, rule: "not a plain ref name" }
  }
  if (u.ref.startsWith("refs/tags/")) {
    if (!policy.tags) return { ok: false, rule: "push.tags is false (tags may not be pushed)" }
    if (deleting && !policy.delete) return { ok: false, rule: "push.delete is false (refs may not be deleted)" }
    if (!creating && !deleting && !policy.force) return { ok: false, rule: "push.force is false (an existing tag may not be moved)" }
    return { ok: true }
  }
  if (!matchesAllow(policy, u.ref)) {
    return { ok: false, rule: `push.allow (${policy.allow.join(", ") || "nothing"}) does not match it` }
  }
  if (deleting) return policy.delete ? { ok: true } : { ok: false, rule: "push.delete is false (refs may not be deleted)" }
  if (!creating && !u.fastForward && !policy.force) return { ok: false, rule: "push.force is false (non-fast-forward updates are refused)" }
  return { ok: true }
}
