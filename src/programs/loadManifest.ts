/**
 * Finds, parses and validates `bottle.yaml`. Every problem is reported with the file, the
 * line, the key path and what was expected; unknown keys are errors; a literal secret is
 * refused. With no manifest found, the embedded default is used (same decoding path).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Schema, SchemaIssue } from "effect"
import * as YAML from "yaml"
import { Manifest } from "../schema/Manifest.ts"
import { formatKeyPath, ManifestError, type ManifestProblem } from "../schema/ManifestError.ts"
import { findSecret, looksLikeLiteralSecret } from "../schema/SecretPatterns.ts"
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

/** Walks up from `cwd` to the filesystem root looking for bottle.yaml. */
export const findManifest = (cwd: string): string | undefined => {
  let dir = path.resolve(cwd)
  for (;;) {
    const candidate = path.join(dir, MANIFEST_FILE)
    if (fs.existsSync(candidate)) return candidate
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

/** Every string scalar in the document, with its key path (for the literal-secret scan). */
const scalars = (node: unknown, keyPath: Array<PropertyKey>, out: Array<{ path: Array<PropertyKey>; value: string; key: string }>) => {
  if (YAML.isMap(node)) {
    for (const pair of node.items) {
      const k = YAML.isScalar(pair.key) ? String(pair.key.value) : "?"
      if (YAML.isScalar(pair.key) && typeof pair.key.value === "string") out.push({ path: [...keyPath, k], value: k, key: "" })
      scalars(pair.value, [...keyPath, k], out)
    }
  } else if (YAML.isSeq(node)) {
    node.items.forEach((item, i) => scalars(item, [...keyPath, i], out))
  } else if (YAML.isScalar(node) && typeof node.value === "string") {
    const last = keyPath[keyPath.length - 1]
    out.push({ path: keyPath, value: node.value, key: typeof last === "string" ? last : "" })
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
  return [...out, ...missing.filter((m) => !used.has(m)).map((m) => ({ path: m.path, message: "required key is missing" }))]
}

/** Parses and validates manifest text; `file` is used in messages only. */
export const parseManifest = (text: string, file: string, dir: string): Effect.Effect<LoadedManifest, ManifestError> =>
  Effect.gen(function*() {
    const lc = new YAML.LineCounter()
    const doc = YAML.parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: true })
    if (doc.errors.length > 0) {
      return yield* new ManifestError({
        file,
        // The first error only: later ones are usually the parser's cascade from it.
        problems: doc.errors.slice(0, 1).map((e) => ({
          line: e.linePos?.[0].line ?? 1,
          column: e.linePos?.[0].col ?? 1,
          path: "",
          message: `YAML syntax error: ${e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}`
        }))
      })
    }
    const locate = makeLocator(doc, lc)
    const at = (keyPath: ReadonlyArray<PropertyKey>, message: string): ManifestProblem => {
      const pos = locate(keyPath)
      return { ...(pos ? { line: pos.line, column: pos.column } : {}), path: formatKeyPath(keyPath), message }
    }

    // Literal secrets first: a manifest is committed to repos; it must never hold one.
    const found: Array<{ path: Array<PropertyKey>; value: string; key: string }> = []
    scalars(doc.contents, [], found)
    const secretProblems = found.flatMap(({ path: p, value, key }) => {
      const pattern = findSecret(value)
      if (pattern) {
        return [at(p, `looks like a literal secret (${pattern.name}); reference tokens by env-var name (token_env) instead of writing them in the manifest`)]
      }
      if (looksLikeLiteralSecret(key, value)) {
        return [at(p, `looks like a literal secret under "${key}"; reference tokens by env-var name (token_env) instead of writing them in the manifest`)]
      }
      return []
    })
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
