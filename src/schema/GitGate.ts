/**
 * The git gate's contract between the launcher (host) and the git-gate daemon (bundle): the
 * config file the launcher writes in the gate's state subdir, each upstream's port and URL as
 * the agent sees them, the audit line, and GitHub's published SSH host keys (built in, so
 * github.com is pinned without a known_hosts_file).
 *
 * Guarantees: an upstream's port is GIT_GATE_PORT + its index in the plan, so launcher, agent
 * config and daemon agree without asking each other; the config carries file names relative to
 * the gate's dir (never host paths), and no secret (the deploy key's private half is a 0600
 * file beside it, read by ssh only).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Schema } from "effect"
import { GIT_GATE_PORT } from "./Bundle.ts"
import type { GitUpstream } from "./Manifest.ts"

/** The gate's config file, in its state subdir. */
export const GATE_CONFIG_FILE = "gate.json"
/** The push audit log (JSON lines), in its state subdir. */
export const GATE_AUDIT_FILE = "audit.log"

export const gatePort = (index: number) => GIT_GATE_PORT + index
/** The URL the agent's git uses for upstream `name` (index in the plan's upstreams). */
export const gateUrl = (bundleIp: string, index: number, name: string) => `http://${bundleIp}:${gatePort(index)}/${name}.git`

export const GatePushPolicy = Schema.Struct({
  allow: Schema.Array(Schema.String),
  force: Schema.Boolean,
  delete: Schema.Boolean,
  tags: Schema.Boolean
})
export type GatePushPolicy = typeof GatePushPolicy.Type

export const GateUpstream = Schema.Struct({
  name: Schema.String,
  url: Schema.String,
  port: Schema.Number,
  push: GatePushPolicy,
  /** The private key ssh uses (relative to the gate's dir), if any. */
  keyFile: Schema.optionalKey(Schema.String),
  /** The known_hosts file ssh pins host keys with (relative to the gate's dir). */
  knownHostsFile: Schema.String
})
export type GateUpstream = typeof GateUpstream.Type

export const GateConfig = Schema.Struct({ upstreams: Schema.Array(GateUpstream) })
export type GateConfig = typeof GateConfig.Type

/** The push policy a manifest's upstream means, defaults filled in. */
export const pushPolicyOf = (u: GitUpstream): GatePushPolicy => ({
  allow: [...(u.push?.allow ?? ["refs/heads/bottle/*"])],
  force: u.push?.force ?? false,
  delete: u.push?.delete ?? false,
  tags: u.push?.tags ?? false
})

/** Whether the policy lets the agent push anything at all (else the deploy key is read-only). */
export const allowsAnyPush = (p: GatePushPolicy): boolean => p.allow.length > 0 || p.tags

/** One line of the push audit log. */
export const GateAuditEntry = Schema.Struct({
  time: Schema.String,
  upstream: Schema.String,
  refs: Schema.Array(Schema.Struct({ ref: Schema.String, old: Schema.String, new: Schema.String, verdict: Schema.String, rule: Schema.optionalKey(Schema.String) })),
  verdict: Schema.Literals(["pushed", "refused", "upstream-failed"]),
  /** What the upstream answered (git push's output), or why nothing was sent. */
  answer: Schema.String
})
export type GateAuditEntry = typeof GateAuditEntry.Type

/**
 * GitHub's published SSH host keys (docs.github.com, "GitHub's SSH key fingerprints"):
 * SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU (Ed25519),
 * SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM (ECDSA),
 * SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s (RSA).
 */
export const GITHUB_KNOWN_HOSTS = [
  "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
  "github.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
  "github.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNUkY4Ue1gvwnGLVlOhGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsmerOBYfNqltV9/hWCqBywINIR+5dIg6JTJ72pcEpEjcYgXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+38TGxkxCflmO+5Z8CSSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOWRVruj16z6XyvxvjJwbz0wQZ75XK5tKSb7FNyeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqExKbQpTUNn+EjqoTwvqNj4kqx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/WnwH6XoPWJzK5Nyu2zB3nAZp+S5hpQs+p1vN1/wsjk="
].join("\n") + "\n"

/** The host an upstream URL reaches over SSH (ssh://[user@]host[:port]/… or user@host:path), if it is SSH. */
export const sshHostOf = (url: string): { readonly host: string; readonly port: number } | undefined => {
  const ssh = /^ssh:\/\/(?:[^@/]+@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\//u.exec(url)
  if (ssh) return { host: ssh[1]!.replace(/^\[|\]$/gu, ""), port: ssh[2] ? Number(ssh[2]) : 22 }
  const scp = /^[A-Za-z0-9_.-]+@([A-Za-z0-9_.-]+):/u.exec(url)
  return scp ? { host: scp[1]!, port: 22 } : undefined
}

/**
 * The push audit log in the gate's dir on the host: its lines that decode (the bundle writes
 * it; a torn or planted line is skipped, never fatal). No file: no push yet.
 */
export const readGateAudit = (gateDir: string): ReadonlyArray<GateAuditEntry> => {
  let text = ""
  try {
    const fd = fs.openSync(path.join(gateDir, GATE_AUDIT_FILE), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
    try {
      text = fs.readFileSync(fd, "utf8")
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    return []
  }
  const decode = Schema.decodeUnknownOption(GateAuditEntry)
  return text.split("\n").flatMap((l) => {
    try {
      const e = decode(JSON.parse(l))
      return e._tag === "Some" ? [e.value] : []
    } catch {
      return []
    }
  })
}
