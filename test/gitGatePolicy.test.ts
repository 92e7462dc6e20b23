/**
 * The git gate's pure parts: the push policy (every rule refuses with its name, and the
 * defaults allow only bottle/* branches), the upstream host an URL names, and the operator's
 * message for an unpinned or changed host key.
 */
import { describe, expect, it } from "vitest"
import { checkUpdate, type RefUpdate } from "../bundle/git-gate/policy.ts"
import { explainSshFailure, sshCommand } from "../bundle/git-gate/upstream.ts"
import { allowsAnyPush, gateUrl, type GateUpstream, pushPolicyOf, sshHostOf } from "../src/schema/GitGate.ts"

const Z = "0".repeat(40)
const A = "a".repeat(40)
const B = "b".repeat(40)
const up = (ref: string, old: string, nu: string, fastForward = true): RefUpdate => ({ ref, old, new: nu, fastForward })
const defaults = pushPolicyOf({ name: "app", url: "git@github.com:acme/app.git" })

describe("push policy", () => {
  it("defaults: bottle/* branches may be created and fast-forwarded; nothing else", () => {
    expect(defaults).toEqual({ allow: ["refs/heads/bottle/*"], force: false, delete: false, tags: false })
    expect(checkUpdate(defaults, up("refs/heads/bottle/x", Z, A))).toEqual({ ok: true })
    expect(checkUpdate(defaults, up("refs/heads/bottle/a/b", A, B))).toEqual({ ok: true })
    expect(checkUpdate(defaults, up("refs/heads/main", A, B))).toEqual({ ok: false, rule: "push.allow (refs/heads/bottle/*) does not match it" })
    expect(checkUpdate(defaults, up("refs/heads/bottle", A, B)).ok).toBe(false)
    expect(checkUpdate(defaults, up("refs/heads/bottle/x", A, B, false))).toEqual({ ok: false, rule: "push.force is false (non-fast-forward updates are refused)" })
    expect(checkUpdate(defaults, up("refs/heads/bottle/x", A, Z))).toEqual({ ok: false, rule: "push.delete is false (refs may not be deleted)" })
    expect(checkUpdate(defaults, up("refs/tags/v1", Z, A))).toEqual({ ok: false, rule: "push.tags is false (tags may not be pushed)" })
  })

  it("force, delete and tags each open exactly their own door", () => {
    const p = { allow: ["refs/heads/feature/*"], force: true, delete: true, tags: true }
    expect(checkUpdate(p, up("refs/heads/feature/x", A, B, false)).ok).toBe(true)
    expect(checkUpdate(p, up("refs/heads/feature/x", A, Z)).ok).toBe(true)
    expect(checkUpdate(p, up("refs/tags/v1", Z, A)).ok).toBe(true)
    expect(checkUpdate(p, up("refs/heads/main", A, B)).ok).toBe(false)
    expect(checkUpdate({ ...p, force: false }, up("refs/tags/v1", A, B)).ok, "moving a tag is a force push").toBe(false)
    expect(checkUpdate({ ...p, delete: false }, up("refs/tags/v1", A, Z)).ok).toBe(false)
  })

  it("pattern characters are literal but for *; odd ref names are refused", () => {
    const p = { allow: ["refs/heads/a.b/*"], force: false, delete: false, tags: false }
    expect(checkUpdate(p, up("refs/heads/a.b/x", Z, A)).ok).toBe(true)
    expect(checkUpdate(p, up("refs/heads/aXb/x", Z, A)).ok).toBe(false)
    expect(checkUpdate(defaults, up("refs/heads/bottle/../main", Z, A))).toEqual({ ok: false, rule: "not a plain ref name" })
    expect(checkUpdate(defaults, up("HEAD", Z, A)).ok).toBe(false)
  })

  it("a policy with no allow pattern and no tags makes the deploy key read-only", () => {
    expect(allowsAnyPush({ allow: [], force: false, delete: false, tags: false })).toBe(false)
    expect(allowsAnyPush({ allow: [], force: false, delete: false, tags: true })).toBe(true)
    expect(allowsAnyPush(defaults)).toBe(true)
  })
})

describe("upstreams", () => {
  const u: GateUpstream = { name: "app", url: "ssh://git@10.0.0.5:2222/acme/app.git", port: 9418, push: defaults, keyFile: "keys/app", knownHostsFile: "known_hosts/app" }

  it("the gate's URL and port follow the upstream's index", () => {
    expect(gateUrl("10.213.4.2", 0, "app")).toBe("http://10.213.4.2:9418/app.git")
    expect(gateUrl("10.213.4.2", 2, "lib")).toBe("http://10.213.4.2:9420/lib.git")
  })

  it("names the SSH host of ssh:// and scp-style URLs", () => {
    expect(sshHostOf("ssh://git@10.0.0.5:2222/acme/app.git")).toEqual({ host: "10.0.0.5", port: 2222 })
    expect(sshHostOf("git@github.com:acme/app.git")).toEqual({ host: "github.com", port: 22 })
    expect(sshHostOf("https://github.com/acme/app.git")).toBeUndefined()
  })

  it("ssh pins host keys strictly, offers only the bottle's key, never asks", () => {
    const cmd = sshCommand("/run/bottle/git-gate", u)
    expect(cmd).toContain("StrictHostKeyChecking=yes")
    expect(cmd).not.toContain("StrictHostKeyChecking=no")
    expect(cmd).toContain("UserKnownHostsFile='/run/bottle/git-gate/known_hosts/app'")
    expect(cmd).toContain("GlobalKnownHostsFile=/dev/null")
    expect(cmd).toContain("-i '/run/bottle/git-gate/keys/app'")
    expect(cmd).toContain("BatchMode=yes")
    // Shared connections are per upstream: another upstream on the same host (other key, other
    // pins) never rides this one's authenticated connection.
    const other = sshCommand("/run/bottle/git-gate", { ...u, name: "lib", keyFile: "keys/lib", knownHostsFile: "known_hosts/lib" }, "/tmp/h")
    expect(sshCommand("/run/bottle/git-gate", u, "/tmp/h")).toContain("ControlPath='/tmp/h/cm-app'")
    expect(other).toContain("ControlPath='/tmp/h/cm-lib'")
  })

  it("an unknown host key says how to pin it; a changed one says it does not match", () => {
    const unknown = explainSshFailure(u, "No ED25519 host key is known for [10.0.0.5]:2222 and you have requested strict checking.\r\nHost key verification failed.")
    expect(unknown).toContain("the SSH host key of [10.0.0.5]:2222 is not pinned for upstream app")
    expect(unknown).toContain("ssh-keyscan -p 2222 10.0.0.5")
    expect(unknown).toContain("known_hosts_file")
    expect(explainSshFailure(u, "@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @")).toContain("does not match")
    expect(explainSshFailure(u, "Permission denied (publickey).")).toBeUndefined()
  })
})
