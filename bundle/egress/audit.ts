/**
 * The egress audit log: one JSON line per request, appended to `<stateDir>/audit.log` and
 * rotated by size to `audit.log.1` … `audit.log.<keep>`.
 *
 * Guarantees: an entry carries time, bottle, method, host, path (never the query string,
 * which may carry secrets), status, bytes in and out, duration, decision and rule — never a
 * header or token. Lines are appended in order with synchronous writes (to the page cache:
 * microseconds), batched so a busy proxy does not pay a write per request: an `allow` or
 * `error` line waits at most FLUSH_MS (or 64 KiB) for others. A refusal (`deny`,
 * `dlp-block`) is written at once, with everything pending before it, so it is on disk before
 * the agent sees the refusal. The pending batch is also written when the process exits,
 * whatever the reason (an uncaught exception included: `exit` listeners run then); only a
 * SIGKILL or a fatal V8 error can lose the last FLUSH_MS of `allow`/`error` lines. A failing
 * disk is reported once on stderr and never fails traffic.
 */
import * as fs from "node:fs"
import type { AuditEntry } from "../../src/schema/AuditLog.ts"
import { errorMessage } from "./errors.ts"
import { auditLogIn } from "./paths.ts"


/** How long an `allow`/`error` line may wait to be written with others. */
export const FLUSH_MS = 20
const FLUSH_BYTES = 64 * 1024

export interface AuditOptions {
  readonly maxBytes?: number
  readonly keep?: number
}

export class AuditLog {
  /** The open audit.log, or undefined when it cannot be opened (then lines are dropped). */
  private fd: number | undefined
  private size: number
  private readonly file: string
  private readonly maxBytes: number
  private readonly keep: number
  private warned = false
  private closed = false
  private pending: Array<string> = []
  private pendingBytes = 0
  private timer: NodeJS.Timeout | undefined
  private readonly onExit = () => this.flush()

  constructor(stateDir: string, options: AuditOptions = {}) {
    this.file = auditLogIn(stateDir)
    this.maxBytes = options.maxBytes ?? 10 * 1024 * 1024
    this.keep = options.keep ?? 5
    this.size = fs.existsSync(this.file) ? fs.statSync(this.file).size : 0
    this.fd = this.open()
    // Runs on process.exit, on the end of the event loop and after an uncaught exception.
    process.on("exit", this.onExit)
  }

  private warn(message: string): void {
    if (!this.warned) process.stderr.write(`egress: audit log ${this.file}: ${message}\n`)
    this.warned = true
  }

  private open(): number | undefined {
    try {
      return fs.openSync(this.file, "a", 0o600)
    } catch (e) {
      this.warn(errorMessage(e))
      return undefined
    }
  }

  write(entry: AuditEntry): void {
    if (this.closed) return
    const line = JSON.stringify(entry) + "\n"
    const bytes = Buffer.byteLength(line)
    if (this.size > 0 && this.size + bytes > this.maxBytes) this.rotate()
    this.size += bytes
    this.pending.push(line)
    this.pendingBytes += bytes
    if (entry.decision === "deny" || entry.decision === "dlp-block" || this.pendingBytes >= FLUSH_BYTES) this.flush()
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS).unref()
  }

  /** Appends the pending lines, in order, in one synchronous write. */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (this.pending.length === 0) return
    const text = this.pending.length === 1 ? this.pending[0]! : this.pending.join("")
    this.pending = []
    this.pendingBytes = 0
    if (this.fd === undefined) return
    try {
      const buf = Buffer.from(text)
      let off = 0
      while (off < buf.length) off += fs.writeSync(this.fd, buf, off)
    } catch (e) {
      this.warn(errorMessage(e))
    }
  }

  private rotate(): void {
    // What is pending belongs to the file being rotated out.
    this.flush()
    try {
      for (let i = this.keep - 1; i >= 1; i--) {
        if (fs.existsSync(`${this.file}.${i}`)) fs.renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`)
      }
      fs.renameSync(this.file, `${this.file}.1`)
    } catch (e) {
      this.warn(`cannot rotate: ${errorMessage(e)}`)
    }
    if (this.fd !== undefined) fs.closeSync(this.fd)
    this.size = 0
    this.fd = this.open()
  }

  close(): Promise<void> {
    this.flush()
    this.closed = true
    process.off("exit", this.onExit)
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd)
      } catch {
        // Already gone: nothing left to write.
      }
      this.fd = undefined
    }
    return Promise.resolve()
  }
}
