/**
 * Following a bottle's JSON-lines files (the egress audit log, git-gate's push log) without
 * rereading them: each read takes the bytes added since the last one. A file that shrank or was
 * replaced (rotation) is read again from its start; a torn last line waits for its end. The
 * first read starts at most `initialBytes` from the end, so a large log costs one bounded read.
 *
 * Guarantees: reads are asynchronous (never block the UI), bounded per call (`maxChunk`), and
 * tolerate anything in the file (lines that do not decode are skipped). The files are in the
 * bottle's state dir, writable from the bundle: they are opened read-only, never followed
 * through a symlink (O_NOFOLLOW), and only regular files are read.
 */
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"

export interface TailOptions {
  readonly initialBytes?: number
  readonly maxChunk?: number
}

export class LineTail<A> {
  private offset = -1
  private ino = -1
  private partial = ""
  readonly file: string
  private readonly decode: (line: string) => A | undefined
  private readonly options: TailOptions
  constructor(file: string, decode: (line: string) => A | undefined, options: TailOptions = {}) {
    this.file = file
    this.decode = decode
    this.options = options
  }

  /** The entries added since the last call (oldest first); none when the file is absent. */
  async read(): Promise<ReadonlyArray<A>> {
    let handle: fsp.FileHandle
    try {
      handle = await fsp.open(this.file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK)
    } catch {
      return []
    }
    try {
      const st = await handle.stat()
      if (!st.isFile()) return []
      if (st.ino !== this.ino || st.size < this.offset) {
        const initial = this.options.initialBytes ?? 1 << 20
        // A file seen for the first time starts near its end; a replaced one from its start.
        this.offset = this.ino === -1 ? Math.max(0, st.size - initial) : 0
        this.partial = ""
        this.ino = st.ino
        if (this.offset > 0) this.partial = "\u0000skip"
      }
      if (st.size === this.offset) return []
      const length = Math.min(st.size - this.offset, this.options.maxChunk ?? 4 << 20)
      const buf = Buffer.alloc(length)
      const { bytesRead } = await handle.read(buf, 0, length, this.offset)
      this.offset += bytesRead
      const text = this.partial + buf.toString("utf8", 0, bytesRead)
      const lines = text.split("\n")
      this.partial = lines.pop() ?? ""
      // Started mid-file: the first piece is the end of a line we did not see whole.
      if (lines[0]?.startsWith("\u0000skip")) lines.shift()
      const out: Array<A> = []
      for (const line of lines) {
        if (line.length === 0) continue
        const a = this.decode(line)
        if (a !== undefined) out.push(a)
      }
      return out
    } finally {
      await handle.close()
    }
  }
}

/** Keeps the newest `max` items of an append-only feed. */
export const keepNewest = <A>(into: Array<A>, added: ReadonlyArray<A>, max: number): void => {
  for (const a of added) into.push(a)
  if (into.length > max) into.splice(0, into.length - max)
}
