/**
 * The dashboard's data, as plain values the components render: a bottle's row (what `bottle ls`
 * lists, plus its manifest label and colour and live counters), its egress and push lines, and
 * its approval requests. Pure functions only; every text that came from a bottle (hosts, paths,
 * titles, notes) is shown through `visible`, so no escape sequence from the agent reaches the
 * terminal.
 */
import { visible } from "../cli/render.ts"
import type { BottleRow } from "../programs/bottles.ts"
import type { AuditEntry } from "../schema/AuditLog.ts"
import type { AgentColor } from "../schema/Manifest.ts"

/** The window of the list's egress counters. */
export const WINDOW_MS = 5 * 60_000

export interface EgressCounts {
  readonly allowed: number
  readonly denied: number
}

/** A git-gate push as far as a tolerant reader can tell (fields it did not find are absent). */
export interface PushLine {
  readonly time: string
  readonly ref: string
  readonly outcome: string
}

export type ApprovalStatus = "pending" | "approved" | "denied" | "expired"

/** An approval request as the dashboard shows it. */
export interface ApprovalLine {
  readonly id: string
  readonly slug: string
  readonly kind: string
  readonly title: string
  /** All of what the agent sent beside the title (a permission prompt's whole tool input): shown in full before an answer. */
  readonly details?: string | undefined
  readonly status: ApprovalStatus
  readonly createdAt: string
  readonly note?: string | undefined
}

export interface DashRow extends BottleRow {
  readonly label: string
  readonly color?: AgentColor | undefined
  readonly egress: EgressCounts
  readonly pushes: number
  readonly pending: number
}

export interface BottleDetail {
  readonly egress: ReadonlyArray<AuditEntry>
  readonly pushes: ReadonlyArray<PushLine>
  readonly approvals: ReadonlyArray<ApprovalLine>
}

/** An alert stays on screen until dismissed; `revocation` ones say a deploy key is still alive. */
export interface Alert {
  readonly id: number
  readonly kind: "revocation" | "error" | "info"
  readonly text: string
}

/** Allowed and refused requests in the window ending at `now` (a rate-limited line counts for `count`). */
export const countEgress = (entries: ReadonlyArray<Pick<AuditEntry, "time" | "decision" | "count">>, now: number): EgressCounts => {
  let allowed = 0
  let denied = 0
  const since = now - WINDOW_MS
  // Every kept entry is looked at: a clock step or a line written late must not hide others.
  for (const e of entries) {
    const t = Date.parse(e.time)
    if (!(t >= since && t <= now + 60_000)) continue
    if (e.decision === "allow") allowed += 1
    else denied += e.count ?? 1
  }
  return { allowed, denied }
}

/** "3s", "4m", "2h", "5d" since `iso` (empty when unknown). */
export const age = (iso: string, now: number): string => {
  const t = Date.parse(iso)
  if (!Number.isFinite(t)) return ""
  const s = Math.max(0, Math.round((now - t) / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86400) return `${Math.floor(s / 3600)}h`
  return `${Math.floor(s / 86400)}d`
}

/** One line of the egress tail: time, decision, method, host+path, status, bytes, rule. */
export const egressText = (e: AuditEntry): string => {
  const hhmmss = e.time.slice(11, 19)
  const verdict = e.decision === "allow" ? "ALLOW" : e.decision === "deny" ? "DENY " : e.decision === "dlp-block" ? "DLP  " : "ERROR"
  const count = e.count && e.count > 1 ? ` ×${e.count}` : ""
  return `${hhmmss} ${verdict} ${visible(e.method)} ${visible(e.host)}${visible(e.path)} ${e.status} ${e.bytes_in}/${e.bytes_out}B ${visible(e.rule)}${count}`
}

/** Fits `s` into `width` cells, with … when cut. */
export const fit = (s: string, width: number): string => (width <= 0 ? "" : s.length <= width ? s : `${s.slice(0, Math.max(0, width - 1))}…`)

/** What `--once --json` prints for a row (camelCase, the counters included). */
export const rowJson = (r: DashRow) => ({
  slug: r.slug,
  agent: r.agent,
  label: r.label,
  color: r.color ?? null,
  backend: r.backend,
  status: r.status,
  createdAt: r.createdAt,
  egressAllowed: r.egress.allowed,
  egressDenied: r.egress.denied,
  pushes: r.pushes,
  pendingApprovals: r.pending
})
