/**
 * The dashboard's live state: the bottles (from `DashApi.rows`, i.e. `listBottles`), each
 * bottle's egress and push feeds (incremental tails of its state-dir files) and approvals, and
 * the alerts. Components read it through `subscribe`/`getSnapshot` (React's external store).
 *
 * What makes it refresh: the state root changing (a bottle added or removed: fs.watch), a
 * bottle's daemon dirs changing (audit lines, pushes, approval files: fs.watch), the engine's
 * events about this root's bottles (`watchEngine`), and a slow tick (5 s) that slides the
 * counters' 5-minute window and the ages. No tight poll. Refreshes are coalesced (one running,
 * at most one queued per kind and bottle) and asynchronous: the UI never waits on one.
 *
 * Guarantees: a failing refresh becomes an alert, never a crash; an alert stays until
 * dismissed; a revocation alert is never replaced by a later one.
 */
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import type { AuditEntry } from "../schema/AuditLog.ts"
import { type DashApi, decodeAudit, decodePush } from "./feed.ts"
import { type Alert, type ApprovalLine, type BottleDetail, countEgress, type DashRow, type PushLine } from "./model.ts"
import { keepNewest, LineTail } from "./tail.ts"

/** How many lines of each feed a bottle keeps in memory. */
const KEEP = 500
const TICK_MS = 5_000
const DEBOUNCE_MS = 100

export interface DashSnapshot {
  readonly rows: ReadonlyArray<DashRow>
  readonly loaded: boolean
  readonly alerts: ReadonlyArray<Alert>
  readonly now: number
}

interface Feed {
  readonly audit: LineTail<AuditEntry>
  readonly egress: Array<AuditEntry>
  readonly pushTails: Map<string, LineTail<PushLine>>
  readonly pushes: Array<PushLine>
  pushCount: number
  approvals: ReadonlyArray<ApprovalLine>
  readonly watchers: Array<fs.FSWatcher>
  readonly watched: Set<string>
}

type BaseRow = Awaited<ReturnType<DashApi["rows"]>>[number]

export interface StoreOptions {
  /** Watch the state dirs and the engine (off in tests that drive refreshes themselves). */
  readonly watch: boolean
  readonly now?: () => number
}

export class DashStore {
  private readonly api: DashApi
  private readonly options: StoreOptions
  private base: ReadonlyArray<BaseRow> = []
  private readonly feeds = new Map<string, Feed>()
  private listeners = new Set<() => void>()
  private snapshot: DashSnapshot
  private alerts: Array<Alert> = []
  private alertSeq = 0
  private listRunning: Promise<void> | undefined
  private listQueued = false
  private readonly bottleRunning = new Map<string, Promise<void>>()
  private readonly bottleQueued = new Set<string>()
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private rootWatcher: fs.FSWatcher | undefined
  private tickTimer: NodeJS.Timeout | undefined
  private stopEngine: (() => void) | undefined
  private publishPending = false
  private listedPending = false

  constructor(api: DashApi, options: StoreOptions) {
    this.api = api
    this.options = options
    this.snapshot = { rows: [], loaded: false, alerts: [], now: this.now() }
  }

  private now(): number {
    return this.options.now?.() ?? Date.now()
  }

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  readonly getSnapshot = (): DashSnapshot => this.snapshot

  /** First load, then the watchers and the tick. */
  async start(): Promise<void> {
    if (this.options.watch) {
      try {
        fs.mkdirSync(this.api.bottlesDir, { recursive: true, mode: 0o700 })
        this.rootWatcher = fs.watch(this.api.bottlesDir, () => this.later("list", () => this.refreshList()))
        this.rootWatcher.on("error", () => undefined)
      } catch (e) {
        this.alert("error", `cannot watch ${this.api.bottlesDir}: ${(e as Error).message}`)
      }
      this.stopEngine = this.api.watchEngine(() => this.later("list", () => this.refreshList()))
      this.tickTimer = setInterval(() => this.tick(), TICK_MS)
      this.tickTimer.unref()
    }
    await this.refreshList()
    this.publishNow(true)
  }

  stop(): void {
    this.rootWatcher?.close()
    this.stopEngine?.()
    if (this.tickTimer) clearInterval(this.tickTimer)
    for (const t of this.timers.values()) clearTimeout(t)
    for (const f of this.feeds.values()) f.watchers.forEach((w) => w.close())
  }

  /** Debounced: many file events in a burst are one refresh. */
  private later(key: string, fn: () => Promise<void>): void {
    if (this.timers.has(key)) return
    const t = setTimeout(() => {
      this.timers.delete(key)
      void fn()
    }, DEBOUNCE_MS)
    t.unref?.()
    this.timers.set(key, t)
  }

  /** Re-lists the bottles (`listBottles`); coalesced. */
  refreshList(): Promise<void> {
    if (this.listRunning) {
      this.listQueued = true
      return this.listRunning
    }
    this.listRunning = (async () => {
      try {
        this.base = await this.api.rows()
        const slugs = new Set(this.base.map((r) => r.slug))
        for (const [slug, feed] of this.feeds) {
          if (!slugs.has(slug)) {
            feed.watchers.forEach((w) => w.close())
            this.feeds.delete(slug)
          }
        }
        await Promise.all(this.base.filter((r) => !this.feeds.has(r.slug)).map((r) => this.refreshBottle(r.slug)))
      } catch (e) {
        this.alert("error", `listing bottles: ${(e as Error).message}`)
      } finally {
        this.listRunning = undefined
        this.publish(true)
        if (this.listQueued) {
          this.listQueued = false
          void this.refreshList()
        }
      }
    })()
    return this.listRunning
  }

  private feedOf(slug: string): Feed {
    let feed = this.feeds.get(slug)
    if (!feed) {
      const files = this.api.files(slug)
      feed = { audit: new LineTail(files.egressAudit, decodeAudit), egress: [], pushTails: new Map(), pushes: [], pushCount: 0, approvals: [], watchers: [], watched: new Set() }
      this.feeds.set(slug, feed)
    }
    return feed
  }

  /**
   * Watches the bottle's dir (a daemon's subdir appearing) and its daemon subdirs that exist by
   * now (egress and supervise with their queue subdirs: recursive). Called on every refresh of
   * the bottle, so a subdir created later is watched from then on.
   */
  private ensureWatchers(slug: string, feed: Feed): void {
    if (!this.options.watch) return
    const files = this.api.files(slug)
    const dirs: ReadonlyArray<readonly [string, boolean]> = [
      [files.stateDir, false],
      [path.dirname(files.egressAudit), true],
      [files.gitGateDir, false],
      [files.superviseDir, true]
    ]
    for (const [dir, recursive] of dirs) {
      if (feed.watched.has(dir)) continue
      try {
        const w = fs.watch(dir, { recursive }, () => this.later(`bottle:${slug}`, () => this.refreshBottle(slug)))
        w.on("error", () => undefined)
        feed.watchers.push(w)
        feed.watched.add(dir)
      } catch {
        // Not there (yet, or this bottle has no such daemon): the next refresh tries again.
      }
    }
  }



  /** Reads what is new in a bottle's files and its approvals; coalesced per bottle. */
  refreshBottle(slug: string): Promise<void> {
    const running = this.bottleRunning.get(slug)
    if (running) {
      this.bottleQueued.add(slug)
      return running
    }
    const p = (async () => {
      const feed = this.feedOf(slug)
      const files = this.api.files(slug)
      this.ensureWatchers(slug, feed)
      try {
        keepNewest(feed.egress, await feed.audit.read(), KEEP)
        let names: Array<string> = []
        try {
          names = (await fsp.readdir(files.gitGateDir)).filter((n) => /\.(log|jsonl)$/.test(n) && /audit|push/.test(n))
        } catch {
          names = []
        }
        for (const n of names) {
          let tail = feed.pushTails.get(n)
          if (!tail) {
            tail = new LineTail(path.join(files.gitGateDir, n), decodePush)
            feed.pushTails.set(n, tail)
          }
          const added = await tail.read()
          feed.pushCount += added.length
          keepNewest(feed.pushes, added, KEEP)
        }
        feed.approvals = await this.api.approvals(slug)
      } catch (e) {
        this.alert("error", `reading bottle ${slug}: ${(e as Error).message}`)
      } finally {
        this.bottleRunning.delete(slug)
        this.publish(false)
        if (this.bottleQueued.delete(slug)) void this.refreshBottle(slug)
      }
    })()
    this.bottleRunning.set(slug, p)
    return p
  }

  /** Slides the window: counters and ages as of now. */
  tick(): void {
    this.publish(false)
  }

  detail(slug: string): BottleDetail {
    const feed = this.feeds.get(slug)
    return { egress: feed?.egress ?? [], pushes: feed?.pushes ?? [], approvals: feed?.approvals ?? [] }
  }

  alert(kind: Alert["kind"], text: string): void {
    this.alerts = [...this.alerts, { id: ++this.alertSeq, kind, text }]
    this.publish(false)
  }

  /** Dismisses the oldest alert (revocation alerts first: they matter most). */
  dismiss(): void {
    const i = this.alerts.findIndex((a) => a.kind === "revocation")
    this.alerts = this.alerts.filter((_, j) => j !== (i >= 0 ? i : 0))
    this.publish(false)
  }

  /**
   * A new snapshot for the screen. Several changes in one turn (20 bottles refreshed together)
   * are one snapshot, hence one draw.
   */
  private publish(listed: boolean): void {
    this.listedPending ||= listed
    if (this.publishPending) return
    this.publishPending = true
    setImmediate(() => {
      this.publishPending = false
      const l = this.listedPending
      this.listedPending = false
      this.publishNow(l)
    })
  }

  private publishNow(listed: boolean): void {
    const now = this.now()
    const rows = this.base.map((r): DashRow => {
      const feed = this.feeds.get(r.slug)
      return {
        ...r,
        egress: countEgress(feed?.egress ?? [], now),
        pushes: feed?.pushCount ?? 0,
        pending: feed?.approvals.filter((a) => a.status === "pending").length ?? 0
      }
    })
    this.snapshot = { rows, loaded: this.snapshot.loaded || listed, alerts: this.alerts, now }
    for (const l of this.listeners) l()
  }
}
