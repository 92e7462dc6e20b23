/**
 * The egress audit log: one JSON line per request, appended to `<stateDir>/audit.log` and
 * rotated by size to `audit.log.1` … `audit.log.<keep>`.
 *
 * Guarantees: an entry carries time, bottle, method, host, path (never the query string,
 * which may carry secrets), status, bytes in and out, duration, decision and rule — never a
 * header or token. Writing never blocks a request: lines are gathered for at most
 * FLUSH_MS (or 64 KiB) and appended in one write, so a busy proxy does not pay a file write
 * per request; `close` writes what is pending. A crash may lose the last FLUSH_MS of lines. A
 * failing disk is reported once on stderr and never fails traffic.
 */
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import { Effect, Schema } from "effect"
import { auditLogIn } from "./paths.ts"
import { EgressError, errorMessage } from "./errors.ts"

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
  reason: Schema.optionalKey(Schema.String)
})
export type AuditEntry = typeof AuditEntry.Type

/** How long a line may wait to be written with others. */
export const FLUSH_MS = 20
const FLUSH_BYTES = 64 * 1024

export interface AuditOptions {
  readonly maxBytes?: number
  readonly keep?: number
}

export class AuditLog {
  private stream: fs.WriteStream
  private size: number
  private readonly file: string
  private readonly maxBytes: number
  private readonly keep: number
  private warned = false
  private pending: Array<string> = []
  private pendingBytes = 0
  private timer: NodeJS.Timeout | undefined

  constructor(stateDir: string, options: AuditOptions = {}) {
    this.file = auditLogIn(stateDir)
    this.maxBytes = options.maxBytes ?? 10 * 1024 * 1024
    this.keep = options.keep ?? 5
    this.size = fs.existsSync(this.file) ? fs.statSync(this.file).size : 0
    this.stream = this.open()
  }

  private open(): fs.WriteStream {
    // Opened now, not when the stream gets to it: a rotation renames the file this stream
    // writes to, so the file must exist (and be this stream's) before any rotation.
    let fd: number
    try {
      fd = fs.openSync(this.file, "a", 0o600)
    } catch (e) {
      if (!this.warned) process.stderr.write(`egress: audit log ${this.file}: ${errorMessage(e)}\n`)
      this.warned = true
      return fs.createWriteStream("/dev/null")
    }
    const s = fs.createWriteStream(this.file, { fd, flags: "a" })
    s.on("error", (e) => {
      if (!this.warned) process.stderr.write(`egress: audit log ${this.file}: ${e.message}\n`)
      this.warned = true
    })
    return s
  }

  write(entry: AuditEntry): void {
    const line = JSON.stringify(entry) + "\n"
    const bytes = Buffer.byteLength(line)
    if (this.size > 0 && this.size + bytes > this.maxBytes) this.rotate()
    this.size += bytes
    this.pending.push(line)
    this.pendingBytes += bytes
    if (this.pendingBytes >= FLUSH_BYTES) this.flush()
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS).unref()
  }

  /** Appends the pending lines, in order, in one write. */
  private flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (this.pending.length === 0) return
    this.stream.write(this.pending.join(""))
    this.pending = []
    this.pendingBytes = 0
  }

  private rotate(): void {
    // What is pending belongs to the file being rotated out.
    this.flush()
    // Renaming an open file is safe: the old stream finishes its pending writes into the
    // renamed file, and the new stream starts a fresh audit.log.
    const old = this.stream
    try {
      for (let i = this.keep - 1; i >= 1; i--) {
        if (fs.existsSync(`${this.file}.${i}`)) fs.renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`)
      }
      fs.renameSync(this.file, `${this.file}.1`)
    } catch (e) {
      if (!this.warned) process.stderr.write(`egress: cannot rotate ${this.file}: ${errorMessage(e)}\n`)
      this.warned = true
    }
    old.end()
    this.size = 0
    this.stream = this.open()
  }

  close(): Promise<void> {
    this.flush()
    return new Promise((resolve) => this.stream.end(resolve))
  }
}

const decodeEntry = Schema.decodeUnknownOption(Schema.fromJsonString(AuditEntry))

/**
 * Reads the audit log, oldest first (rotated files, then the live one). Lines that are not
 * audit entries (a torn last line) are skipped.
 */
export const readAudit = Effect.fn("readAudit")(function*(stateDir: string): Effect.fn.Return<ReadonlyArray<AuditEntry>, EgressError> {
  const file = auditLogIn(stateDir)
  const files = yield* Effect.tryPromise({
    try: async () => {
      const names = await fsp.readdir(stateDir)
      const rotated = names
        .map((n) => /^audit\.log\.(\d+)$/.exec(n))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => Number(m[1]))
        .sort((a, b) => b - a)
        .map((i) => `${file}.${i}`)
      return names.includes("audit.log") ? [...rotated, file] : rotated
    },
    catch: (cause) => new EgressError({ reason: { _tag: "AuditUnreadable", path: file, message: errorMessage(cause) } })
  })
  const out: Array<AuditEntry> = []
  for (const f of files) {
    const text = yield* Effect.tryPromise({
      try: () => fsp.readFile(f, "utf8"),
      catch: (cause) => new EgressError({ reason: { _tag: "AuditUnreadable", path: f, message: errorMessage(cause) } })
    })
    for (const line of text.split("\n")) {
      if (line.length === 0) continue
      const entry = decodeEntry(line)
      if (entry._tag === "Some") out.push(entry.value)
    }
  }
  return out
})
