/**
 * Human renderings of plans and bottle lists. Never prints a secret: tokens appear by env-var
 * name with whether the host has them set.
 */
import { type Grant, isUnrestricted, MODEL_API_TOKENS } from "../programs/grants.ts"
import type { AuditEntry } from "../schema/AuditLog.ts"
import type { BottlePlan } from "../schema/BottlePlan.ts"
import { notBuiltDaemons } from "../schema/BundleProtocol.ts"

const PLACEHOLDERS = new Set(["egress-placeholder"])

/**
 * `pendingGrants`: routes (by host and token env) that inject a token into a host that is not
 * its known home, or an account token at home with any path and method, and were never
 * approved (grants.ts): flagged, since start will ask about them. A credential route that
 * limits neither paths nor methods is flagged UNRESTRICTED either way.
 */
export const renderPlan = (plan: BottlePlan, manifestLabel: string, pendingGrants: ReadonlyArray<Grant> = []): string => {
  const lines: Array<string> = []
  // Manifest text is shown, never obeyed: control characters (an escape sequence could move the
  // cursor, erase a warning or hide the prompt) are written out as \x.. escapes.
  const row = (k: string, v: string) => lines.push(`  ${k.padEnd(10)} ${v.split("\n").map(visible).join("\n")}`)
  lines.push(`Bottle ${plan.slug}  (agent ${plan.agent}, bottle ${plan.bottle}, backend ${plan.backend})`)
  row("manifest", manifestLabel)
  row("workspace", plan.mountCwd
    ? `${plan.cwd} MOUNTED read-write at ${plan.workdir} (the agent edits these files in place; .git, bottle.yaml, editor and shell auto-run files stay read-only)`
    : plan.copyCwd ? `${plan.cwd} copied to ${plan.workdir}` : `${plan.workdir} (empty; copy_cwd is off)`)
  row("network", describeNetwork(plan))
  const unbuilt = new Set(notBuiltDaemons(plan.daemons))
  row("daemons", plan.daemons.map((d) => (unbuilt.has(d) ? `${d} (NOT BUILT YET in this version: start refuses this plan)` : d)).join(", "))
  if (plan.egress.routes.length === 0) row("egress", plan.egress.onUnrouted === "ask" ? "no routes" : "no routes: every request is refused")
  plan.egress.routes.forEach((r, i) => {
    const scope = [
      r.methods ? r.methods.join("|") : "any method",
      r.paths ? r.paths.join(" ") : "any path",
      `port ${(r.ports ?? [443]).join(",")}`
    ].join(", ")
    const auth = r.auth
      ? `; injects ${r.auth.header ?? "authorization"}: ${r.auth.scheme ? `${r.auth.scheme} ` : ""}$${r.auth.token_env} (${plan.egress.tokens.find((t) => t.env === r.auth!.token_env)?.present ? "set" : "NOT SET on this host"})`
      : ""
    const reach = r.allow_private_ips ? "; MAY RESOLVE TO PRIVATE ADDRESSES (allow_private_ips)" : ""
    const pending = (unrestricted: boolean) =>
      r.auth !== undefined && pendingGrants.some((g) => g.host === r.host && g.token_env === r.auth!.token_env && (g.unrestricted === true) === unrestricted)
    const grant = r.auth && pending(false)
      ? `; NEW CREDENTIAL GRANT: not where $${r.auth.token_env} is known to belong (start asks you to approve it)`
      : ""
    const open = r.auth && isUnrestricted(r)
      ? `; UNRESTRICTED TOKEN ROUTE: $${r.auth.token_env} → ${r.host}, any path and method${
        pending(true) ? " (the account's whole power there: start asks you to approve it; limit it with paths or methods)"
        : MODEL_API_TOKENS.has(r.auth.token_env) ? " (its model API)" : ""
      }`
      : ""
    row(i === 0 ? "egress" : "", `${r.host} (${scope})${auth}${reach}${grant}${open}`)
  })
  if (plan.egress.onUnrouted === "ask") row("", "unrouted hosts: ASK (refused with a pending approval id; `bottle approve ID --route once|session`)")
  if (plan.git.upstreams.length === 0) row("git", "no upstreams")
  plan.git.upstreams.forEach((u, i) =>
    row(i === 0 ? "git" : "", `${u.name} → ${u.url} (push ${(u.push?.allow ?? ["refs/heads/bottle/*"]).join(" ")}${u.push?.force ? ", force" : ""}${u.deploy_key ? `; deploy key on ${u.deploy_key.repo}, revoked at teardown` : ""})`)
  )
  row("supervise", plan.supervise
    ? `on: MCP server "supervise" at ${plan.env["MCP_SUPERVISE_URL"] ?? "the bundle"} (user scope, ~/.claude.json); \`bottle approvals\` to answer${
      plan.supervisePermissionPrompts ? "; Claude Code's permission prompts go to the queue" : ""}; unanswered requests expire after ${plan.superviseExpireMinutes ?? 30} min`
    : "off")
  row("command", plan.command.join(" "))
  row("prompt", plan.prompt.trim() ? `${plan.prompt.length} characters` : "none")
  if (plan.skills.length > 0) row("skills", plan.skills.map((s) => `${s.name} (${s.source})`).join(", "))
  const env = Object.entries(plan.env)
    .filter(([k]) => !/^(https?_proxy|no_proxy)$/i.test(k) || k === k.toUpperCase())
    .map(([k, v]) => `${k}=${PLACEHOLDERS.has(v) ? `${v} (not a secret)` : v}`)
  row("env", env.join("\n" + " ".repeat(13)))
  const res = [plan.resources.cpus !== undefined ? `${plan.resources.cpus} cpus` : "", plan.resources.memory ? `memory ${plan.resources.memory}` : ""].filter(Boolean)
  row("resources", res.length ? res.join(", ") : "engine defaults")
  return lines.join("\n")
}

/** The bottle's network as its backend lays it out. */
const describeNetwork = (plan: BottlePlan): string => {
  const rt = plan.runtime
  switch (rt.backend) {
    case "docker":
      return `internal ${rt.internalNetwork} ${plan.network.subnet} (bundle ${plan.network.bundleIp}); egress ${rt.egressNetwork} (bundle only)`
    case "smolmachines":
      // macOS: the bundle is published on a per-bottle loopback alias, which needs sudo (said up front).
      return process.platform === "darwin"
        ? `bundle on ${rt.bundleNetwork} ${plan.network.subnet}, published on a per-bottle 127.0.0.x alias (\`sudo ifconfig lo0 alias\`: sudo asked for); VM ${rt.machine} may reach that alias/32 only`
        : `bundle on ${rt.bundleNetwork} ${plan.network.subnet} (bundle ${plan.network.bundleIp}); VM ${rt.machine} may reach ${plan.network.bundleIp}/32 only`
  }
}

/**
 * A string with its control characters (C0 but tab, DEL, C1) shown as \x.. escapes, and its
 * bidirectional controls (which reorder what follows them: `u\u202etxt.exe` reads `uexe.txt`) as
 * \u.... escapes.
 */
export const visible = (s: string): string =>
  // eslint-disable-next-line no-control-regex
  s.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]|[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) =>
    c.charCodeAt(0) > 0xff ? `\\u${c.charCodeAt(0).toString(16)}` : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)

/**
 * JSON for a terminal as well as a script: what JSON.stringify leaves raw (DEL, C1 controls,
 * bidirectional controls) written as \u escapes too; it parses to the same value.
 */
export const jsonText = (value: unknown, space?: number): string =>
  JSON.stringify(value, null, space).replace(/[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

export const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const fmt = (r: ReadonlyArray<string>) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()
  return [fmt(headers), ...rows.map(fmt)].join("\n")
}

/** The readable view of the egress audit log (`bottle logs --egress`). */
export const AUDIT_HEADERS = ["TIME", "DECISION", "METHOD", "HOST", "PATH", "STATUS", "REASON"] as const

/** One audit line as a row: local time, and the agent-influenced text with control characters escaped. */
export const auditRow = (e: AuditEntry): Array<string> => {
  const t = new Date(e.time)
  const time = Number.isNaN(t.getTime()) ? e.time : `${t.toLocaleDateString("sv")} ${t.toLocaleTimeString("en-GB", { hour12: false })}`
  const path = e.path.length > 60 ? `${e.path.slice(0, 57)}...` : e.path
  const reason = e.reason ?? (e.decision === "allow" ? "" : e.rule)
  return [time, e.count !== undefined && e.count > 1 ? `${e.decision} ×${e.count}` : e.decision, e.method, e.host, path, String(e.status), reason].map(visible)
}

/** Fixed column widths for a followed audit log (the lines to come cannot be measured). */
const FOLLOW_WIDTHS = [19, 9, 7, 28, 40, 6, 0]
export const auditLineFixed = (cells: ReadonlyArray<string>): string => cells.map((c, i) => c.padEnd(FOLLOW_WIDTHS[i] ?? 0)).join("  ").trimEnd()

/** How long ago an ISO time was, as `docker ps` says it: "just now", "5 minutes ago", "3 days ago". */
export const relativeAge = (iso: string, now: number): string => {
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return iso === "" ? "?" : iso
  const s = Math.max(0, Math.round((now - t) / 1000))
  const unit = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"} ago`
  if (s < 10) return "just now"
  if (s < 60) return unit(s, "second")
  if (s < 3600) return unit(Math.floor(s / 60), "minute")
  if (s < 86400) return unit(Math.floor(s / 3600), "hour")
  if (s < 86400 * 14) return unit(Math.floor(s / 86400), "day")
  if (s < 86400 * 60) return unit(Math.floor(s / (86400 * 7)), "week")
  return unit(Math.floor(s / (86400 * 30)), "month")
}
