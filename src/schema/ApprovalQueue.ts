/**
 * The approval queue's files (see Approval.ts for the layout): plain synchronous Node, so the
 * bundle's daemons (supervise, egress) and the host's programs share one reader and one writer.
 *
 * Guarantees:
 *   - a request file appears whole or not at all (temp file in the same dir, then rename);
 *   - an answer file is created exclusively (a hard link of a finished temp file fails with
 *     EEXIST like O_EXCL): of two answers, the first one stays, the second learns it lost;
 *   - only names matching `<id>.json` with a valid id are read; files are opened with
 *     O_NOFOLLOW, must be regular files and at most LIMITS.fileBytes: a symlink or a giant file
 *     planted in the dir is skipped, never followed or read whole;
 *   - a file that does not decode is skipped (listed in `skipped`), never fatal to the reader;
 *   - the dirs written into must be real directories, not symlinks: the sidecar can write the
 *     queue dir, and must not be able to point the host's writes elsewhere.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Schema } from "effect"
import {
  ANSWERS_DIR,
  APPROVAL_ID,
  type ApprovalAnswer,
  ApprovalAnswer as AnswerSchema,
  type ApprovalRequest,
  ApprovalRequest as RequestSchema,
  LIMITS,
  REQUESTS_DIR,
  statusOf
} from "./Approval.ts"

const decodeRequest = Schema.decodeUnknownExit(RequestSchema, { onExcessProperty: "ignore" })
const decodeAnswer = Schema.decodeUnknownExit(AnswerSchema, { onExcessProperty: "ignore" })

const FILE_NAME = /^([a-z2-9]{12})\.json$/u

const randomSuffix = () => `${process.pid}-${Math.random().toString(36).slice(2, 10)}`

/** Reads a small regular file without following a symlink; undefined when absent, too big or not a file. */
export const readSmallFile = (file: string, maxBytes: number = LIMITS.fileBytes): string | undefined => {
  let fd: number
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK)
  } catch {
    return undefined
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile() || st.size > maxBytes) return undefined
    const buf = Buffer.alloc(st.size)
    let off = 0
    while (off < st.size) {
      const n = fs.readSync(fd, buf, off, st.size - off, off)
      if (n <= 0) break
      off += n
    }
    return buf.subarray(0, off).toString("utf8")
  } catch {
    return undefined
  } finally {
    fs.closeSync(fd)
  }
}

const parseWith = <A>(decode: (u: unknown) => { _tag: string; value?: A }, text: string | undefined): A | undefined => {
  if (text === undefined) return undefined
  try {
    const exit = decode(JSON.parse(text))
    return exit._tag === "Success" ? (exit.value as A) : undefined
  } catch {
    return undefined
  }
}

export const requestFile = (queueDir: string, id: string) => path.join(queueDir, REQUESTS_DIR, `${id}.json`)
export const answerFile = (queueDir: string, id: string) => path.join(queueDir, ANSWERS_DIR, `${id}.json`)

/** Throws unless `dir` is a directory itself (lstat: a symlink to one is refused). */
const realDir = (dir: string) => {
  const st = fs.lstatSync(dir)
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory (a symlink?): refusing to write there`)
}

const checkId = (id: string) => {
  if (!APPROVAL_ID.test(id)) throw new Error(`not an approval id: ${JSON.stringify(id.slice(0, 40))}`)
}

/** The request `id` in `queueDir` (a daemon's state dir), if there is a readable one. */
export const readRequest = (queueDir: string, id: string): ApprovalRequest | undefined => {
  if (!APPROVAL_ID.test(id)) return undefined
  const r = parseWith<ApprovalRequest>(decodeRequest, readSmallFile(requestFile(queueDir, id)))
  return r !== undefined && r.id === id ? r : undefined
}

/** The answer to `id`, if any. */
export const readAnswer = (queueDir: string, id: string): ApprovalAnswer | undefined => {
  if (!APPROVAL_ID.test(id)) return undefined
  const a = parseWith<ApprovalAnswer>(decodeAnswer, readSmallFile(answerFile(queueDir, id)))
  return a !== undefined && a.id === id ? a : undefined
}

/** Writes a request (whole, by rename). Throws on I/O failure. */
export const writeRequest = (queueDir: string, request: ApprovalRequest): void => {
  checkId(request.id)
  const dir = path.join(queueDir, REQUESTS_DIR)
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  realDir(dir)
  const file = path.join(dir, `${request.id}.json`)
  const tmp = path.join(dir, `.tmp-${randomSuffix()}`)
  fs.writeFileSync(tmp, `${JSON.stringify(request)}\n`, { mode: 0o600, flag: "wx" })
  try {
    fs.renameSync(tmp, file)
  } catch (e) {
    fs.rmSync(tmp, { force: true })
    throw e
  }
}

/**
 * Writes `answer` unless the request already has one: `written` true when this call's answer
 * is the one on disk. Throws on I/O failure.
 */
export const writeAnswer = (queueDir: string, answer: ApprovalAnswer): { readonly written: boolean } => {
  checkId(answer.id)
  const dir = path.join(queueDir, ANSWERS_DIR)
  realDir(queueDir)
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { mode: 0o700 })
  realDir(dir)
  const file = path.join(dir, `${answer.id}.json`)
  const tmp = path.join(dir, `.tmp-${randomSuffix()}`)
  fs.writeFileSync(tmp, `${JSON.stringify(answer)}\n`, { mode: 0o600, flag: "wx" })
  try {
    fs.linkSync(tmp, file)
    return { written: true }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return { written: false }
    throw e
  } finally {
    fs.rmSync(tmp, { force: true })
  }
}

export interface QueueEntry {
  readonly request: ApprovalRequest
  readonly answer: ApprovalAnswer | undefined
}

/** Every readable request in `queueDir` with its answer; `skipped`: names that did not decode. */
export const listQueue = (queueDir: string): { readonly entries: ReadonlyArray<QueueEntry>; readonly skipped: ReadonlyArray<string> } => {
  let names: Array<string>
  try {
    names = fs.readdirSync(path.join(queueDir, REQUESTS_DIR))
  } catch {
    return { entries: [], skipped: [] }
  }
  const entries: Array<QueueEntry> = []
  const skipped: Array<string> = []
  for (const name of names) {
    const m = FILE_NAME.exec(name)
    if (!m) continue
    const request = readRequest(queueDir, m[1]!)
    if (request === undefined) {
      skipped.push(name)
      continue
    }
    entries.push({ request, answer: readAnswer(queueDir, request.id) })
  }
  return { entries, skipped }
}

/** How many requests in `queueDir` are pending at `now` (a daemon refuses new ones past LIMITS.pendingPerDaemon). */
export const pendingCount = (queueDir: string, now: number): number =>
  listQueue(queueDir).entries.filter((e) => statusOf(e.request, e.answer, now) === "pending").length

/**
 * Deletes the request files of requests that expired unanswered, all but the `keep` newest: the
 * agent can refill the pending cap at every expiry, and the queue lives on the host's disk.
 * Answered requests (a person's decision, and what egress grants are read from) and pending ones
 * are never touched. Returns how many it deleted. Never throws: a file it cannot delete stays.
 */
export const pruneExpired = (queueDir: string, now: number, keep: number = LIMITS.expiredKept): number => {
  const expired = listQueue(queueDir).entries
    .filter((e) => e.answer === undefined && statusOf(e.request, e.answer, now) === "expired")
    .sort((a, b) => Date.parse(b.request.createdAt) - Date.parse(a.request.createdAt))
  let deleted = 0
  for (const e of expired.slice(keep)) {
    try {
      fs.rmSync(requestFile(queueDir, e.request.id), { force: true })
      deleted++
    } catch {
      // left for the next prune
    }
  }
  return deleted
}
