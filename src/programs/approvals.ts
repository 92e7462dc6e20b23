/**
 * The approval queue on the host: list, get, answer and watch the requests of every bottle
 * (the supervise daemon's: tools and Claude Code's permission prompts; egress's: unrouted hosts
 * under `on_unrouted: ask`). The files live in each daemon's subdir of the bottle's state
 * (src/schema/ApprovalQueue.ts), so the queue survives a bundle restart, a stop/resume and a
 * crash of this CLI: nothing is held in memory but a watcher's last snapshot.
 *
 * Guarantees:
 *   - `list`: pending first, then oldest first (ties by id: a stable order);
 *   - `answer` keeps the first answer: a second one (or one racing it) is reported as
 *     `already`, with the answer that stands; an expired request cannot be answered;
 *   - `--route` is for egress requests only; an approval never carries a credential;
 *   - `watch` emits each new or changed request (status included, expiry too) once, woken by
 *     fs.watch on the queue dirs, with a poll as a fallback (fs.watch misses events on some
 *     filesystems and bind mounts).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Duration, Effect, Queue, Schema, Stream } from "effect"
import { type Approval, approvalOf, type ApprovalRoute, APPROVAL_ID, LIMITS, QUEUE_SUBDIRS, REQUESTS_DIR, ANSWERS_DIR } from "../schema/Approval.ts"
import { listQueue, readAnswer, readRequest, writeAnswer } from "../schema/ApprovalQueue.ts"
import { StateError, StateIo, StateNotFound, StateStore } from "../services/StateStore.ts"

export class ApprovalNotFound extends Schema.TaggedClass<ApprovalNotFound>()("NotFound", { id: Schema.String }) {}
export class ApprovalBadArgument extends Schema.TaggedClass<ApprovalBadArgument>()("BadArgument", { message: Schema.String }) {}
export class ApprovalExpired extends Schema.TaggedClass<ApprovalExpired>()("Expired", { id: Schema.String }) {}

export class ApprovalError extends Schema.TaggedError<ApprovalError>()("ApprovalError", {
  reason: Schema.Union([ApprovalNotFound, ApprovalBadArgument, ApprovalExpired])
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "NotFound":
        return `no approval request ${JSON.stringify(r.id)} (see \`bottle approvals\`)`
      case "BadArgument":
        return r.message
      case "Expired":
        return `approval request ${r.id} has expired: the agent must ask again`
    }
  }
}

const io = (p: string) => (e: unknown) => new StateError({ reason: new StateIo({ path: p, message: (e as Error).message }) })

/** The queue dirs of bottle `slug` (one per daemon that keeps a queue). */
const queueDirsOf = (state: StateStore["Service"], slug: string) => QUEUE_SUBDIRS.map((sub) => path.join(state.bottleDir(slug), sub))

const byQueueOrder = (a: Approval, b: Approval): number => {
  const pa = a.status === "pending" ? 0 : 1
  const pb = b.status === "pending" ? 0 : 1
  if (pa !== pb) return pa - pb
  const ta = Date.parse(a.createdAt)
  const tb = Date.parse(b.createdAt)
  if (ta !== tb) return ta - tb
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

const snapshot = (state: StateStore["Service"], slugs: ReadonlyArray<string>, now: number): Array<Approval> =>
  slugs.flatMap((slug) => queueDirsOf(state, slug).flatMap((dir) => listQueue(dir).entries.map((e) => approvalOf(slug, e.request, e.answer, now))))

const bottlesOf = Effect.fnUntraced(function*(bottle: string | undefined) {
  const state = yield* StateStore
  if (bottle === undefined) return yield* state.list
  if (!(yield* state.exists(bottle))) return yield* new StateError({ reason: new StateNotFound({ slug: bottle }) })
  return [bottle]
})

/** Every request of `bottle` (all bottles when absent): pending first, then oldest first. */
export const list = Effect.fn("approvals.list")(function*(bottle?: string) {
  const state = yield* StateStore
  const slugs = yield* bottlesOf(bottle)
  const now = Date.now()
  return yield* Effect.try({ try: () => snapshot(state, slugs, now).sort(byQueueOrder), catch: io(state.root) })
})

interface Located {
  readonly slug: string
  readonly dir: string
}

const locate = Effect.fnUntraced(function*(id: string) {
  if (!APPROVAL_ID.test(id)) {
    return yield* new ApprovalError({ reason: new ApprovalBadArgument({ message: `expected an approval id (12 characters of a-z and 2-9, see \`bottle approvals\`), got ${JSON.stringify(id.slice(0, 40))}` }) })
  }
  const state = yield* StateStore
  for (const slug of yield* state.list) {
    for (const dir of queueDirsOf(state, slug)) {
      if (readRequest(dir, id) !== undefined) return { slug, dir } satisfies Located
    }
  }
  return yield* new ApprovalError({ reason: new ApprovalNotFound({ id }) })
})

/** One request by id, in whichever bottle holds it. */
export const get = Effect.fn("approvals.get")(function*(id: string) {
  const { slug, dir } = yield* locate(id)
  const request = readRequest(dir, id)
  if (request === undefined) return yield* new ApprovalError({ reason: new ApprovalNotFound({ id }) })
  return approvalOf(slug, request, readAnswer(dir, id), Date.now())
})

export type Decision = "approve" | "deny"

export interface AnswerOptions {
  readonly note?: string | undefined
  readonly route?: ApprovalRoute | undefined
  /** Egress approvals: the host may resolve to a private address. */
  readonly allowPrivateIps?: boolean | undefined
}

export interface AnswerOutcome {
  /** `answered`: this call's answer is the one on disk; `already`: an earlier answer stands. */
  readonly outcome: "answered" | "already"
  readonly approval: Approval
}

/**
 * Answers request `id`. The first answer stays: a request answered before (or by a racing
 * call) is returned as `already` with the answer that stands. An egress approval defaults to
 * `route: once`.
 */
export const answer = Effect.fn("approvals.answer")(function*(id: string, decision: Decision, options: AnswerOptions = {}) {
  const { slug, dir } = yield* locate(id)
  const request = readRequest(dir, id)
  if (request === undefined) return yield* new ApprovalError({ reason: new ApprovalNotFound({ id }) })
  const note = options.note
  if (note !== undefined && note.length > LIMITS.note) {
    return yield* new ApprovalError({ reason: new ApprovalBadArgument({ message: `--note: at most ${LIMITS.note} characters, got ${note.length}` }) })
  }
  if ((options.route !== undefined || options.allowPrivateIps === true) && (request.kind !== "egress" || decision !== "approve")) {
    return yield* new ApprovalError({
      reason: new ApprovalBadArgument({
        message: `${options.route !== undefined ? "--route" : "--allow-private-ips"} applies to approving an egress request; ${id} is a ${request.kind} request${decision === "deny" ? " being denied" : ""}`
      })
    })
  }
  const now = Date.now()
  const before = approvalOf(slug, request, readAnswer(dir, id), now)
  if (before.status === "expired") return yield* new ApprovalError({ reason: new ApprovalExpired({ id }) })
  if (before.status !== "pending") return { outcome: "already", approval: before } satisfies AnswerOutcome
  const route = request.kind === "egress" && decision === "approve" ? (options.route ?? "once") : undefined
  const { written } = yield* Effect.try({
    try: () =>
      writeAnswer(dir, {
        id,
        status: decision === "approve" ? "approved" : "denied",
        answeredAt: new Date(now).toISOString(),
        ...(note !== undefined && note !== "" ? { note } : {}),
        ...(route !== undefined ? { route } : {}),
        ...(route !== undefined && options.allowPrivateIps === true ? { allowPrivateIps: true } : {})
      }),
    catch: io(dir)
  })
  const after = approvalOf(slug, request, readAnswer(dir, id), Date.now())
  return { outcome: written ? "answered" : "already", approval: after } satisfies AnswerOutcome
})

/** What changed about a request since the watcher last looked. */
export interface ApprovalEvent {
  readonly change: "new" | "changed"
  readonly approval: Approval
}

export interface WatchOptions {
  /** Only this bottle (all bottles, new ones included, when absent). */
  readonly bottle?: string | undefined
  /** Emit the requests already there as `new` first (default false: only what happens next). */
  readonly initial?: boolean
  /** The fallback poll's period (default 1 s). */
  readonly pollEvery?: Duration.Input
}

/**
 * New and changed requests, as they happen: fs.watch on each queue dir (and the bottles dir,
 * for new bottles) wakes a rescan; a poll rescans anyway (missed events, expiries).
 */
export const watch = (options: WatchOptions = {}): Stream.Stream<ApprovalEvent, StateError, StateStore> =>
  Stream.callback<ApprovalEvent, StateError, StateStore>(Effect.fnUntraced(function*(queue) {
    const state = yield* StateStore
    if (options.bottle !== undefined) yield* bottlesOf(options.bottle)
    const seen = new Map<string, string>()
    const watchers = new Map<string, fs.FSWatcher>()
    const wake = yield* Queue.sliding<void>(1)
    const poke = () => Queue.offerUnsafe(wake, undefined)

    const watchDir = (dir: string) => {
      if (watchers.has(dir)) return
      try {
        const w = fs.watch(dir, { persistent: false }, poke)
        w.on("error", () => {
          w.close()
          watchers.delete(dir)
        })
        watchers.set(dir, w)
      } catch {
        // Not there yet (no request so far): the poll finds it, and watches it then.
      }
    }
    yield* Effect.addFinalizer(() => Effect.sync(() => {
      for (const w of watchers.values()) w.close()
      watchers.clear()
    }))

    const scan = (first: boolean) => Effect.try({
      try: () => {
        const slugs = options.bottle !== undefined
          ? [options.bottle]
          : fs.existsSync(path.join(state.root, "bottles")) ? fs.readdirSync(path.join(state.root, "bottles")) : []
        if (options.bottle === undefined) watchDir(path.join(state.root, "bottles"))
        for (const slug of slugs) {
          for (const dir of queueDirsOf(state, slug)) {
            watchDir(dir)
            watchDir(path.join(dir, REQUESTS_DIR))
            watchDir(path.join(dir, ANSWERS_DIR))
          }
        }
        const out: Array<ApprovalEvent> = []
        for (const a of snapshot(state, slugs, Date.now()).sort(byQueueOrder)) {
          const key = `${a.bottle}/${a.id}`
          const sig = `${a.status}|${a.answeredAt ?? ""}`
          const prev = seen.get(key)
          seen.set(key, sig)
          if (prev === undefined ? (!first || options.initial === true) : prev !== sig) {
            out.push({ change: prev === undefined ? "new" : "changed", approval: a })
          }
        }
        return out
      },
      catch: io(state.root)
    }).pipe(Effect.flatMap((events) => Effect.sync(() => { for (const e of events) Queue.offerUnsafe(queue, e) })))

    yield* scan(true)
    const poll = Effect.sleep(options.pollEvery ?? Duration.seconds(1)).pipe(Effect.andThen(Effect.sync(poke)), Effect.forever)
    yield* Effect.forkScoped(poll)
    yield* Effect.forkScoped(
      Queue.take(wake).pipe(
        // Several events of one write arrive together: one rescan for the lot.
        Effect.andThen(Effect.sleep(Duration.millis(15))),
        Effect.andThen(scan(false)),
        Effect.catch((e) => Queue.fail(queue, e)),
        Effect.forever
      )
    )
  }))

/** Pending requests of `bottle`, oldest first (for the dashboard's badge). */
export const pending = (bottle?: string) => list(bottle).pipe(Effect.map((all) => all.filter((a) => a.status === "pending")))

/** The queue dirs of bottle `slug` on the host. */
export const queueDirs = Effect.fnUntraced(function*(slug: string) {
  const state = yield* StateStore
  return queueDirsOf(state, slug)
})

