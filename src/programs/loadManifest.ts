/**
 * Finds, parses and validates `bottle.yaml`. Every problem is reported with the file, the
 * line, the key path and what was expected; unknown keys are errors; a literal secret is
 * refused, in a value or in a comment. With no manifest found, the embedded default is used
 * (same decoding path).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Schema, SchemaIssue } from "effect"
import * as YAML from "yaml"
import { Manifest } from "../schema/Manifest.ts"
import { formatKeyPath, ManifestError, type ManifestProblem } from "../schema/ManifestError.ts"
import { findSecret, findSecretLines, looksLikeLiteralSecret, namesSecret } from "../schema/SecretPatterns.ts"
import { defaultManifestYaml, DEFAULT_MANIFEST_NAME } from "../schema/defaultManifest.ts"

export const MANIFEST_FILE = "bottle.yaml"

export interface LoadedManifest {
  /** Path of the file, or DEFAULT_MANIFEST_NAME for the embedded default. */
  readonly file: string
  /** Directory relative paths in the manifest resolve against. */
  readonly dir: string
  readonly manifest: Manifest
  readonly isDefault: boolean
  /** Line and column of a key path in the source, for later errors (missing prompt file, ...). */
  readonly locate: (path: ReadonlyArray<PropertyKey>) => { readonly line: number; readonly column: number } | undefined
}

/** Walks up from `cwd` to the filesystem root looking for a bottle.yaml file. */
export const findManifest = (cwd: string): string | undefined => {
  let dir = path.resolve(cwd)
  for (;;) {
    const candidate = path.join(dir, MANIFEST_FILE)
    // A directory of that name is not a manifest (it is what mount_cwd lays over a missing
    // bottle.yaml while a bottle runs): the search goes on upwards.
    if (fs.existsSync(candidate) && !fs.statSync(candidate).isDirectory()) return candidate
    const parent = path.dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

type Pos = { readonly line: number; readonly column: number }

const makeLocator = (doc: YAML.Document.Parsed, lc: YAML.LineCounter) => (keyPath: ReadonlyArray<PropertyKey>): Pos | undefined => {
  const at = (offset: number | undefined): Pos | undefined => {
    if (offset === undefined) return undefined
    const p = lc.linePos(offset)
    return { line: p.line, column: p.col }
  }
  let node: unknown = doc.contents
  let best: Pos | undefined = at((doc.contents as YAML.Node | null)?.range?.[0])
  for (const seg of keyPath) {
    if (YAML.isMap(node)) {
      const pair = node.items.find((p) => YAML.isScalar(p.key) && String(p.key.value) === String(seg))
      if (!pair) return best
      best = at((pair.key as YAML.Node).range?.[0]) ?? best
      node = pair.value
    } else if (YAML.isSeq(node) && typeof seg === "number") {
      const item = node.items[seg]
      if (!item) return best
      best = at((item as YAML.Node).range?.[0]) ?? best
      node = item
    } else {
      return best
    }
  }
  return best
}

interface Found {
  readonly path: Array<PropertyKey>
  readonly value: string
  readonly key: string
  /** Source offset of the end of the scalar (its last line bounds the line the scan reports). */
  readonly to: number | undefined
}

/** Every string scalar in the document, keys included, with its key path (for the literal-secret scan). */
const scalars = (node: unknown, keyPath: Array<PropertyKey>, out: Array<Found>) => {
  if (YAML.isMap(node)) {
    for (const pair of node.items) {
      const k = YAML.isScalar(pair.key) ? String(pair.key.value) : "?"
      if (YAML.isScalar(pair.key) && typeof pair.key.value === "string") out.push({ path: [...keyPath, k], value: k, key: "", to: pair.key.range?.[1] })
      scalars(pair.value, [...keyPath, k], out)
    }
  } else if (YAML.isSeq(node)) {
    node.items.forEach((item, i) => scalars(item, [...keyPath, i], out))
  } else if (YAML.isScalar(node) && typeof node.value === "string") {
    const last = keyPath[keyPath.length - 1]
    out.push({ path: keyPath, value: node.value, key: typeof last === "string" ? last : "", to: node.range?.[1] })
  }
}

/** The key path of the map key that starts at `offset` (where the parser points at a duplicate key). */
const keyPathAt = (node: unknown, offset: number, prefix: ReadonlyArray<PropertyKey>): ReadonlyArray<PropertyKey> | undefined => {
  const inside = (n: unknown) => {
    const r = (n as YAML.Node | null)?.range
    return r != null && offset >= r[0] && offset < r[2]
  }
  if (YAML.isMap(node)) {
    for (const pair of node.items) {
      const k = YAML.isScalar(pair.key) ? String(pair.key.value) : "?"
      if ((pair.key as YAML.Node | null)?.range?.[0] === offset) return [...prefix, k]
      if (inside(pair.value)) {
        const found = keyPathAt(pair.value, offset, [...prefix, k])
        if (found) return found
      }
    }
  } else if (YAML.isSeq(node)) {
    for (const [i, item] of node.items.entries()) {
      if (inside(item)) {
        const found = keyPathAt(item, offset, [...prefix, i])
        if (found) return found
      }
    }
  }
  return undefined
}

/**
 * A YAML parser error as a problem, in our words: located (`lineOffset` is added to the line,
 * for YAML embedded in another file), with the key path where the parser points at a key.
 * `subject` names the text in messages ("a manifest", "the front matter").
 */
export const yamlProblem = (
  e: YAML.YAMLError,
  doc: YAML.Document.Parsed,
  options: { readonly subject: string; readonly lineOffset?: number }
): ManifestProblem => {
  const offset = options.lineOffset ?? 0
  const line = (e.linePos?.[0].line ?? 1) + offset
  const pos = { line, column: e.linePos?.[0].col ?? 1 }
  switch (e.code) {
    case "DUPLICATE_KEY": {
      const keyPath = keyPathAt(doc.contents, e.pos[0], [])
      if (keyPath) return { ...pos, path: formatKeyPath(keyPath), message: `duplicate key "${String(keyPath[keyPath.length - 1])}"` }
      return { ...pos, path: "", message: "duplicate key (keys of a mapping must be unique)" }
    }
    case "MULTIPLE_DOCS":
      return { ...pos, path: "", message: `${options.subject} is one YAML document; found a second document at line ${line}` }
    case "TAB_AS_INDENT":
      return { ...pos, path: "", message: "tab used for indentation; YAML indents with spaces only" }
    default:
      return { ...pos, path: "", message: `YAML syntax error: ${e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}` }
  }
}

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()
const decodeManifest = Schema.decodeUnknownExit(Manifest, { onExcessProperty: "error", errors: "all" })

type Issue = { readonly path: ReadonlyArray<PropertyKey>; readonly message: string }
const parentKey = (p: ReadonlyArray<PropertyKey>) => p.slice(0, -1).map(String).join("\u0000")

/**
 * Turns Schema issues into manifest problems. An unknown key beside a missing one in the same
 * mapping is almost always a typo: report it once, with the suggestion.
 */
const explainIssues = (issues: ReadonlyArray<Issue>): ReadonlyArray<Issue> => {
  const missing = issues.filter((i) => i.message === "Missing key")
  const used = new Set<Issue>()
  const out = issues.flatMap((i): ReadonlyArray<Issue> => {
    if (i.message === "Missing key" ) return []
    if (i.message === "Expected no excess property") {
      const twin = missing.find((m) => parentKey(m.path) === parentKey(i.path) && !used.has(m))
      if (twin) used.add(twin)
      return [{ path: i.path, message: `unknown key${twin ? ` (did you mean "${String(twin.path[twin.path.length - 1])}"?)` : " (not part of the manifest format; see `bottle schema`)"}` }]
    }
    if (i.path.length === 0 && i.message === "Expected object") {
      return [{ path: i.path, message: "expected a mapping with the keys agents and bottles" }]
    }
    return [{ path: i.path, message: i.message.replace(/^Expected /, "expected ") }]
  })
  // Missing keys of one mapping are one problem (an empty `{}` manifest is one line, not two).
  const byParent = new Map<string, Array<Issue>>()
  for (const m of missing.filter((m) => !used.has(m))) byParent.set(parentKey(m.path), [...(byParent.get(parentKey(m.path)) ?? []), m])
  const missingProblems = [...byParent.values()].map((ms): Issue =>
    ms.length === 1
      ? { path: ms[0]!.path, message: "required key is missing" }
      : { path: ms[0]!.path.slice(0, -1), message: `required keys are missing: ${ms.map((m) => String(m.path[m.path.length - 1])).join(", ")}` }
  )
  return [...out, ...missingProblems]
}

/** Parses and validates manifest text; `file` is used in messages only. */
export const parseManifest = (text: string, file: string, dir: string): Effect.Effect<LoadedManifest, ManifestError> =>
  Effect.gen(function*() {
    const lc = new YAML.LineCounter()
    const doc = YAML.parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: true })
    const locate = makeLocator(doc, lc)
    const at = (keyPath: ReadonlyArray<PropertyKey>, message: string): ManifestProblem => {
      const pos = locate(keyPath)
      return { ...(pos ? { line: pos.line, column: pos.column } : {}), path: formatKeyPath(keyPath), message }
    }

    // Literal secrets first: a manifest is committed to repos; it must never hold one, not even
    // in a comment. The raw text is scanned line by line with the credential patterns; the
    // values, below, also with the key-aware heuristics.
    const lineHits = findSecretLines(text)
    const lineProblem = (h: (typeof lineHits)[number]): ManifestProblem => ({
      line: h.line,
      path: "",
      message: `looks like a literal secret (${h.pattern.name}) on this line, in a comment or a value; remove it: tokens are referenced by env-var name (token_env), never written in the manifest`
    })
    const empty = doc.contents === null || (YAML.isScalar(doc.contents) && doc.contents.value === null)
    if (lineHits.length > 0 && (doc.errors.length > 0 || empty)) {
      return yield* new ManifestError({ file, problems: lineHits.map(lineProblem) })
    }
    if (doc.errors.length > 0) {
      // The first error only: later ones are usually the parser's cascade from it.
      return yield* new ManifestError({ file, problems: [yamlProblem(doc.errors[0]!, doc, { subject: "a manifest" })] })
    }
    if (empty) {
      return yield* new ManifestError({ file, problems: [{ line: 1, path: "", message: "empty manifest: expected a mapping with the keys agents and bottles" }] })
    }

    const found: Array<Found> = []
    scalars(doc.contents, [], found)
    const flagged: Array<{ readonly problem: ManifestProblem; readonly lines: readonly [number, number] }> = []
    for (const f of found) {
      const pattern = findSecret(f.value)
      const message = pattern
        ? `looks like a literal secret (${pattern.name}); reference tokens by env-var name (token_env) instead of writing them in the manifest`
        : looksLikeLiteralSecret(f.key, f.value)
        ? namesSecret(f.key)
          ? `looks like a literal secret under "${f.key}": the agent never holds secrets (values reach it as written, nothing expands them); route the service that needs it through egress with auth: { token_env: NAME } so the real value stays on the host, or set the key to a file path`
          : `looks like a literal secret under "${f.key}"; reference tokens by env-var name (token_env) instead of writing them in the manifest`
        : undefined
      if (message === undefined) continue
      const problem = at(f.path, message)
      const first = problem.line ?? 1
      // The value's last line: its end offset is one past it (after a block scalar's newline).
      flagged.push({ problem, lines: [first, f.to !== undefined && f.to > 0 ? Math.max(first, lc.linePos(f.to - 1).line) : first] })
    }
    // A line the value scan already reported is not reported twice.
    const secretProblems = [
      ...flagged.map((f) => f.problem),
      ...lineHits.filter((h) => !flagged.some((f) => h.line >= f.lines[0] && h.line <= f.lines[1])).map(lineProblem)
    ].sort((a, b) => (a.line ?? 0) - (b.line ?? 0))
    if (secretProblems.length > 0) return yield* new ManifestError({ file, problems: secretProblems })

    const raw = doc.toJS() ?? {}
    const exit = decodeManifest(raw)
    if (exit._tag === "Failure") {
      const err = exit.cause.reasons.find((r) => r._tag === "Fail")
      const issue = err && err._tag === "Fail" ? (err.error as Schema.SchemaError).issue : undefined
      const issues = (issue ? formatIssues(issue).issues : [{ path: [], message: "invalid manifest" }]).map((i) => ({
        path: (i.path ?? []).map((s) => (typeof s === "object" && s !== null ? (s as { key: PropertyKey }).key : s)),
        message: i.message
      }))
      return yield* new ManifestError({ file, problems: explainIssues(issues).map((i) => at(i.path, i.message)) })
    }
    const manifest = exit.value

    // Cross-references the Schema cannot express.
    const problems: Array<ManifestProblem> = []
    const badName = (n: string) => !/^[a-z][a-z0-9-]{0,30}$/.test(n)
    const nameRule = "expected a name of lower-case letters, digits and '-', starting with a letter (at most 31 characters)"
    for (const section of ["agents", "bottles"] as const) {
      for (const n of Object.keys(manifest[section])) if (badName(n)) problems.push(at([section, n], `invalid name "${n}": ${nameRule}`))
    }
    const envMaps: Array<[ReadonlyArray<PropertyKey>, Record<string, string> | undefined]> = [
      ...Object.entries(manifest.agents).map(([n, a]): [ReadonlyArray<PropertyKey>, Record<string, string> | undefined] => [["agents", n, "env"], a.env]),
      ...Object.entries(manifest.bottles).map(([n, b]): [ReadonlyArray<PropertyKey>, Record<string, string> | undefined] => [["bottles", n, "env"], b.env])
    ]
    for (const [p, env] of envMaps) {
      for (const k of Object.keys(env ?? {})) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) problems.push(at([...p, k], `invalid environment variable name "${k}"`))
      }
    }
    for (const [name, agent] of Object.entries(manifest.agents)) {
      if (!(agent.bottle in manifest.bottles)) {
        const known = Object.keys(manifest.bottles)
        problems.push(at(["agents", name, "bottle"], `bottle "${agent.bottle}" is not defined under bottles (defined: ${known.length ? known.join(", ") : "none"})`))
      }
    }
    for (const [name, bottle] of Object.entries(manifest.bottles)) {
      const seen = new Set<string>()
      bottle.git?.upstreams.forEach((u, i) => {
        if (seen.has(u.name)) problems.push(at(["bottles", name, "git", "upstreams", i, "name"], `duplicate upstream name "${u.name}"`))
        seen.add(u.name)
        if (u.identity_file !== undefined && u.deploy_key !== undefined) {
          problems.push(at(["bottles", name, "git", "upstreams", i], "set either identity_file or deploy_key, not both"))
        }
        if (u.identity_file === undefined && u.deploy_key === undefined && !u.url.startsWith("file://")) {
          problems.push(at(["bottles", name, "git", "upstreams", i], "needs identity_file or deploy_key (how the git gate authenticates upstream)"))
        }
      })
      if (bottle.workspace?.copy_cwd && bottle.workspace.mount_cwd) {
        problems.push(at(["bottles", name, "workspace", "mount_cwd"], "set either copy_cwd or mount_cwd, not both"))
      }
      const hosts = new Set<string>()
      bottle.egress?.routes.forEach((r, i) => {
        const key = `${r.host} ${(r.paths ?? []).join(",")} ${(r.methods ?? []).join(",")}`
        if (hosts.has(key)) problems.push(at(["bottles", name, "egress", "routes", i, "host"], `duplicate route for ${r.host}`))
        hosts.add(key)
      })
    }
    if (problems.length > 0) return yield* new ManifestError({ file, problems })

    return { file, dir, manifest, isDefault: false, locate }
  })

/** `--manifest PATH`, else bottle.yaml found walking up from cwd, else the embedded default. */
export const loadManifest = Effect.fn("loadManifest")(function*(options: {
  readonly cwd: string
  readonly manifestPath?: string | undefined
  readonly env: Record<string, string | undefined>
}) {
  const file = options.manifestPath !== undefined ? path.resolve(options.cwd, options.manifestPath) : findManifest(options.cwd)
  if (file === undefined) {
    const loaded = yield* parseManifest(defaultManifestYaml(options.env), DEFAULT_MANIFEST_NAME, options.cwd)
    return { ...loaded, isDefault: true }
  }
  const text = yield* Effect.try({
    try: () => fs.readFileSync(file, "utf8"),
    catch: (e) => new ManifestError({ file, problems: [{ path: "", message: `cannot read the manifest: ${(e as Error).message}` }] })
  })
  return yield* parseManifest(text, file, path.dirname(file))
})
