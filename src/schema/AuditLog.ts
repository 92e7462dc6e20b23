/**
 * The egress audit log's format, shared by the egress daemon (which writes it, see
 * bundle/egress/audit.ts) and the CLI (`bottle logs --egress`, which reads it): one JSON line
 * per request in `<egress dir>/audit.log`, rotated to `audit.log.1` … (1 newest).
 */
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { Effect, Schema } from "effect"

export const AuditDecision = Schema.Literals(["allow", "deny", "dlp-block", "error"])
export type AuditDecision = typeof AuditDecision.Type

export const AuditEntry = Schema.Struct({
  time: Schema.String,
  bottle: Schema.String,
  method: Schema.String,
  host: Schema.String,
  path: Schema.String,
  status: Schema.Number,
  bytes_in: Schema.Number,
  bytes_out: Schema.Number,
  duration_ms: Schema.Number,
  decision: AuditDecision,
  rule: Schema.String,
  reason: Schema.optionalKey(Schema.String),
  /** How many refusals the line stands for (rate-limited refusals, see admission.ts); 1 when absent. */
  count: Schema.optionalKey(Schema.Number)
})
export type AuditEntry = typeof AuditEntry.Type

export class AuditUnreadable extends Schema.TaggedError<AuditUnreadable>()("AuditUnreadable", { path: Schema.String, detail: Schema.String }) {
  override get message(): string {
    return `cannot read egress audit log ${this.path}: ${this.detail}`
  }
}

const decodeEntry = Schema.decodeUnknownOption(Schema.fromJsonString(AuditEntry))

/**
 * Reads the audit log, oldest first (rotated files, then the live one). Lines that are not
 * audit entries (a torn last line) are skipped.
 */
export const readAudit = Effect.fn("readAudit")(function*(
  stateDir: string,
  options: { readonly rotatedOnly?: boolean } = {}
): Effect.fn.Return<ReadonlyArray<AuditEntry>, AuditUnreadable> {
  const file = path.join(stateDir, "audit.log")
  const files = yield* Effect.tryPromise({
    try: async () => {
      const names = await fsp.readdir(stateDir)
      const rotated = names
        .map((n) => /^audit\.log\.(\d+)$/.exec(n))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => Number(m[1]))
        .sort((a, b) => b - a)
        .map((i) => `${file}.${i}`)
      return names.includes("audit.log") && options.rotatedOnly !== true ? [...rotated, file] : rotated
    },
    catch: (cause) => new AuditUnreadable({ path: file, detail: cause instanceof Error ? cause.message : String(cause) })
  })
  const out: Array<AuditEntry> = []
  for (const f of files) {
    const text = yield* Effect.tryPromise({
      try: () => fsp.readFile(f, "utf8"),
      catch: (cause) => new AuditUnreadable({ path: f, detail: cause instanceof Error ? cause.message : String(cause) })
    })
    for (const line of text.split("\n")) {
      if (line.length === 0) continue
      const entry = decodeEntry(line)
      if (entry._tag === "Some") out.push(entry.value)
    }
  }
  return out
})

/**
 * An audit entry as the CLI's `--json` prints it: the file's fields with camelCase keys (one
 * key style across every command's JSON), nothing added or dropped.
 */
export const auditJson = (e: AuditEntry) => ({
  time: e.time,
  bottle: e.bottle,
  decision: e.decision,
  method: e.method,
  host: e.host,
  path: e.path,
  status: e.status,
  rule: e.rule,
  ...(e.reason !== undefined ? { reason: e.reason } : {}),
  bytesIn: e.bytes_in,
  bytesOut: e.bytes_out,
  durationMs: e.duration_ms,
  ...(e.count !== undefined ? { count: e.count } : {})
})

/**
 * Follows the live audit.log from its current end (`history`: from the first line of the oldest
 * rotated file): calls `onEntry` for each line, until interrupted. Rotation is followed without losing lines: the old file
 * (still open) is read to its end before the new one is opened from its start. It polls (the
 * daemon batches its writes every ~20 ms; a poll every `everyMs` is what a person watching
 * needs), which also works where file events do not (bind mounts, Docker Desktop).
 */
export const followAudit = (
  stateDir: string,
  onEntry: (e: AuditEntry) => void,
  options: { readonly everyMs?: number; readonly history?: boolean } = {}
) =>
  Effect.gen(function*() {
    const file = path.join(stateDir, "audit.log")
    const every = options.everyMs ?? 200
    let fd: number | undefined
    let ino = -1
    let offset = 0
    let partial = ""
    const open = (fromStart: boolean) => {
      try {
        fd = fs.openSync(file, "r")
        const st = fs.fstatSync(fd)
        ino = st.ino
        offset = fromStart ? 0 : st.size
        partial = ""
      } catch {
        fd = undefined
      }
    }
    const drain = () => {
      if (fd === undefined) return
      const buf = Buffer.alloc(64 * 1024)
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, offset)
        if (n <= 0) break
        offset += n
        partial += buf.subarray(0, n).toString("utf8")
        const lines = partial.split("\n")
        partial = lines.pop() ?? ""
        for (const line of lines) {
          const entry = decodeEntry(line)
          if (entry._tag === "Some") onEntry(entry.value)
        }
      }
    }
    const close = () => {
      if (fd !== undefined) fs.closeSync(fd)
      fd = undefined
    }
    yield* Effect.addFinalizer(() => Effect.sync(close))
    if (options.history === true) {
      for (const e of yield* readAudit(stateDir, { rotatedOnly: true }).pipe(Effect.orElseSucceed(() => []))) onEntry(e)
    }
    yield* Effect.sync(() => open(options.history === true))
    for (;;) {
      yield* Effect.sync(() => {
        drain()
        let now: number | undefined
        try {
          now = fs.statSync(file).ino
        } catch {
          now = undefined
        }
        // Rotated (or created since): finish the old file, then the files rotated after it
        // (it is now audit.log.<k>: .<k-1> … .1 are newer), then the live one, each from its start.
        if (now !== undefined && now !== ino) {
          const old = ino
          close()
          if (old !== -1) {
            let k = 1
            for (; k <= 1000; k++) {
              try {
                if (fs.statSync(`${file}.${k}`).ino === old) break
              } catch {
                k = 1001
              }
            }
            for (let j = Math.min(k, 1001) - 1; j >= 1; j--) {
              try {
                fd = fs.openSync(`${file}.${j}`, "r")
                offset = 0
                partial = ""
                drain()
              } catch {
                // Rotated away meanwhile: nothing to read there.
              }
              close()
            }
          }
          open(true)
          drain()
        }
      })
      yield* Effect.sleep(every)
    }
  }).pipe(Effect.scoped)
