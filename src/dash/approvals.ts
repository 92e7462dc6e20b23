/**
 * The dashboard's view of the approval queue: list a bottle's requests, answer one. The queue
 * itself (files, expiry, first answer wins) belongs to supervise's programs
 * (src/programs/approvals.ts); this is the narrow interface the dashboard needs from them, so
 * the components can be tested on a fake queue.
 */
import type { Effect } from "effect"
import type { ApprovalLine } from "./model.ts"

export interface ApprovalQueue<R> {
  /** The bottle's requests, pending first, oldest first. */
  readonly list: (slug: string) => Effect.Effect<ReadonlyArray<ApprovalLine>, unknown, R>
  /** Answers request `id` of bottle `slug`; a request already answered keeps its first answer. */
  readonly answer: (slug: string, id: string, decision: "approve" | "deny", note: string | undefined) => Effect.Effect<void, unknown, R>
}
