/**
 * routes.yaml: reading, validating and editing it. Shared contract (src/schema): the egress
 * daemon reads it, the host writes it at launch and edits it (`bottle egress allow|deny`). The
 * same `RoutesFile` Schema that checks a manifest's `egress.routes` checks this file, with
 * unknown keys as errors, so a route that `bottle plan` accepts is a route the daemon accepts
 * and a typo is never silently ignored.
 *
 * `deny` removes a host's live routes; the manifest's routes stay in the bottle's plan, so an
 * `allow` of that host later restores them as they were (credential included).
 *
 * Edits (`bottle egress allow|deny`) are atomic: a temp file in the same directory, renamed
 * over the old one, so the daemon (watching the mounted directory) never reads half a file.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Schema, SchemaIssue } from "effect"
import * as YAML from "yaml"
import { type Route, RouteHost, RoutesFile } from "./Route.ts"

export const RoutesUnreadable = Schema.TaggedStruct("RoutesUnreadable", { file: Schema.String, message: Schema.String })
export const RoutesInvalid = Schema.TaggedStruct("RoutesInvalid", { file: Schema.String, problems: Schema.Array(Schema.String) })
export const BadArgument = Schema.TaggedStruct("BadArgument", { message: Schema.String })

/** What went wrong with a routes file (the egress daemon reports the same reasons as its own). */
export class RoutesFileError extends Schema.TaggedError<RoutesFileError>()("RoutesFileError", {
  reason: Schema.Union([RoutesUnreadable, RoutesInvalid, BadArgument])
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "RoutesUnreadable":
        return `cannot read routes file ${r.file}: ${r.message}`
      case "RoutesInvalid":
        return `invalid routes file ${r.file}:\n${r.problems.map((p) => `  ${p}`).join("\n")}`
      case "BadArgument":
        return r.message
    }
  }
}

const errorMessage = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const decode = Schema.decodeUnknownExit(RoutesFile, { onExcessProperty: "error", errors: "all" })
const decodeHost = Schema.decodeUnknownExit(RouteHost)
const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const pathOf = (p: ReadonlyArray<unknown> | undefined): string =>
  (p ?? [])
    .map((s) => (typeof s === "object" && s !== null ? (s as { key: PropertyKey }).key : s))
    .reduce<string>((acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc === "" ? String(k) : `${acc}.${String(k)}`), "")

const schemaProblems = (exit: ReturnType<typeof decode>): ReadonlyArray<string> => {
  if (exit._tag === "Success") return []
  const failure = exit.cause.reasons.find((r) => r._tag === "Fail")
  const issue = failure && failure._tag === "Fail" ? (failure.error as Schema.SchemaError).issue : undefined
  if (!issue) return ["invalid routes file"]
  return formatIssues(issue).issues.map((i) => {
    const at = pathOf(i.path)
    return at ? `${at}: ${i.message}` : i.message
  })
}

/** Parses and validates routes YAML; `file` is used in messages only. */
export const parseRoutes = (text: string, file: string): Effect.Effect<RoutesFile, RoutesFileError> =>
  Effect.suspend(() => {
    const doc = YAML.parseDocument(text, { uniqueKeys: true })
    if (doc.errors.length > 0) {
      return Effect.fail(
        new RoutesFileError({ reason: { _tag: "RoutesInvalid", file, problems: [`YAML syntax error: ${doc.errors[0]!.message.split("\n")[0]}`] } })
      )
    }
    const exit = decode(doc.toJS() ?? {})
    if (exit._tag === "Success") return Effect.succeed(exit.value)
    return Effect.fail(new RoutesFileError({ reason: { _tag: "RoutesInvalid", file, problems: schemaProblems(exit) } }))
  })

export const readRoutesText = (file: string): Effect.Effect<string, RoutesFileError> =>
  Effect.tryPromise({
    try: () => fs.readFile(file, "utf8"),
    catch: (cause) => new RoutesFileError({ reason: { _tag: "RoutesUnreadable", file, message: errorMessage(cause) } })
  })

export const loadRoutes = Effect.fn("loadRoutes")(function*(file: string): Effect.fn.Return<RoutesFile, RoutesFileError> {
  const text = yield* readRoutesText(file)
  return yield* parseRoutes(text, file)
})

/** Renders routes as YAML (used when the launch program writes a bottle's routes file). */
export const renderRoutes = (routes: RoutesFile): string => YAML.stringify(routes)

/** Writes `text` to `file` by rename from a temp file in the same directory. */
export const writeFileAtomic = (file: string, text: string): Effect.Effect<void, RoutesFileError> =>
  Effect.tryPromise({
    try: async () => {
      const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${crypto.randomBytes(6).toString("hex")}.tmp`)
      await fs.writeFile(tmp, text, { mode: 0o644, flag: "wx" })
      try {
        await fs.rename(tmp, file)
      } catch (e) {
        await fs.rm(tmp, { force: true })
        throw e
      }
    },
    catch: (cause) => new RoutesFileError({ reason: { _tag: "RoutesUnreadable", file, message: errorMessage(cause) } })
  })

const checkHost = (host: string): Effect.Effect<string, RoutesFileError> => {
  const lower = host.toLowerCase()
  const exit = decodeHost(lower)
  return exit._tag === "Success"
    ? Effect.succeed(exit.value)
    : Effect.fail(new RoutesFileError({ reason: { _tag: "BadArgument", message: `expected a host name like api.example.com or *.example.com, got ${JSON.stringify(host)}` } }))
}

export type EditOutcome = "changed" | "unchanged"

/**
 * Edits the routes document in place (keeping comments), validates the result with the same
 * Schema, and writes it atomically.
 */
const editRoutes = (
  file: string,
  edit: (doc: YAML.Document.Parsed, routes: YAML.YAMLSeq) => EditOutcome | RoutesFileError
): Effect.Effect<EditOutcome, RoutesFileError> =>
  Effect.gen(function*() {
    const text = yield* readRoutesText(file)
    yield* parseRoutes(text, file)
    const doc = YAML.parseDocument(text)
    let seq = doc.get("routes", true)
    if (!YAML.isSeq(seq)) {
      seq = new YAML.YAMLSeq()
      doc.set("routes", seq)
    }
    const outcome = edit(doc, seq as YAML.YAMLSeq)
    if (outcome instanceof RoutesFileError) return yield* outcome
    if (outcome === "unchanged") return outcome
    const next = doc.toString()
    yield* parseRoutes(next, file)
    yield* writeFileAtomic(file, next)
    return outcome
  })

const hostOf = (item: unknown): string | undefined => {
  if (!YAML.isMap(item)) return undefined
  const h = item.get("host")
  return typeof h === "string" ? h : undefined
}

/**
 * Adds a route for `host`, unless one exists: the manifest's own routes for it (`manifest`:
 * the bottle's planned routes, credential, paths and methods included) when it had any, so a
 * deny then allow gives back exactly what the manifest said; else a bare route (any path, any
 * method, no credential). With `allowPrivateIps`, the host may resolve to a private address:
 * set on the new routes, or on every existing route for that host. `restored` says the
 * manifest's routes came back.
 */
export const allowHost = Effect.fn("allowHost")(function*(
  file: string,
  host: string,
  options: { readonly allowPrivateIps?: boolean; readonly manifest?: ReadonlyArray<Route> } = {}
): Effect.fn.Return<EditOutcome | "restored", RoutesFileError> {
  const h = yield* checkHost(host)
  let restored = false
  const outcome = yield* editRoutes(file, (doc, seq) => {
    const existing = seq.items.filter((i) => hostOf(i) === h)
    if (existing.length === 0) {
      const planned = (options.manifest ?? []).filter((r) => r.host === h)
      if (planned.length > 0) {
        for (const r of planned) seq.items.push(doc.createNode(options.allowPrivateIps ? { ...r, allow_private_ips: true } : r))
        restored = true
        return "changed"
      }
      seq.items.push(doc.createNode(options.allowPrivateIps ? { host: h, allow_private_ips: true } : { host: h }))
      return "changed"
    }
    if (!options.allowPrivateIps) return "unchanged"
    let changed = false
    for (const item of existing as Array<YAML.YAMLMap>) {
      if (item.get("allow_private_ips") !== true) {
        item.set("allow_private_ips", true)
        changed = true
      }
    }
    return changed ? "changed" : "unchanged"
  })
  return restored ? "restored" : outcome
})

/** Removes every route whose host is exactly `host` (pattern string as written). */
export const denyHost = Effect.fn("denyHost")(function*(file: string, host: string): Effect.fn.Return<EditOutcome, RoutesFileError> {
  const h = yield* checkHost(host)
  return yield* editRoutes(file, (_doc, seq) => {
    const before = seq.items.length
    seq.items = seq.items.filter((i) => hostOf(i) !== h)
    return seq.items.length === before ? "unchanged" : "changed"
  })
})
