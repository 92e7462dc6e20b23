/**
 * The dashboard's view of the approval queue: a bottle's requests and answering one, through
 * supervise's programs (src/programs/approvals.ts: the files, expiry and "first answer wins"
 * are theirs). `ApprovalQueue` is the narrow interface the dashboard needs, so its components
 * can also be tested on a fake queue.
 */
import { Effect } from "effect"
import * as approvals from "../programs/approvals.ts"
import type { Approval } from "../schema/Approval.ts"
import type { StateStore } from "../services/StateStore.ts"
import type { ApprovalLine } from "./model.ts"

export interface ApprovalQueue<R> {
  /** The bottle's requests, pending first, oldest first. */
  readonly list: (slug: string) => Effect.Effect<ReadonlyArray<ApprovalLine>, unknown, R>
  /** Answers request `id` of bottle `slug`; says what happened (a request answered before keeps its first answer). */
  readonly answer: (slug: string, id: string, decision: "approve" | "deny", note: string | undefined) => Effect.Effect<string, unknown, R>
}

const lineOf = (a: Approval): ApprovalLine => ({
  id: a.id,
  slug: a.bottle,
  kind: a.kind,
  // An egress request is its target; the daemon's title may say less.
  title: a.kind === "egress" && a.host !== undefined ? `${a.method ?? "?"} ${a.host}:${a.port ?? 443}${a.path ?? ""}` : a.title,
  details: a.details,
  status: a.status,
  createdAt: a.createdAt,
  note: a.note
})

/** The queue as `bottle approvals|approve|deny` see it. */
export const approvalQueue: ApprovalQueue<StateStore> = {
  list: (slug) => approvals.list(slug).pipe(Effect.map((all) => all.map(lineOf))),
  answer: (_slug, id, decision, note) =>
    approvals.answer(id, decision, { note }).pipe(
      Effect.map((r) =>
        r.outcome === "answered"
          ? `${decision === "approve" ? "approved" : "denied"} ${id}${r.approval.route ? ` (route: ${r.approval.route})` : ""}`
          : `${id} was already ${r.approval.status}: the first answer stands`
      )
    )
}
