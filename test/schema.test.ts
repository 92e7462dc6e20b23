/**
 * `bottle schema` and the example manifests: the JSON Schema editors use must accept what the
 * loader accepts (every example), reject what it rejects (unknown keys, wrong types), and the
 * examples themselves must load and plan. full.yaml must use every key of the format, so a
 * new manifest feature without an example fails here.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Ajv2020 } from "ajv/dist/2020.js"
import { Effect } from "effect"
import * as YAML from "yaml"
import { manifestJsonSchema } from "../src/cli/schema.ts"
import * as StateStoreLive from "../src/layers/StateStore.ts"
import { loadManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"

const examplesDir = path.join(import.meta.dirname, "../examples")
const examples = fs.readdirSync(examplesDir).filter((f) => f.endsWith(".yaml")).sort()
const readExample = (f: string): unknown => YAML.parse(fs.readFileSync(path.join(examplesDir, f), "utf8"))

type JsonSchema = {
  readonly type?: string
  readonly properties?: Record<string, JsonSchema>
  readonly additionalProperties?: boolean | JsonSchema
  readonly items?: JsonSchema
  readonly prefixItems?: ReadonlyArray<JsonSchema>
  readonly anyOf?: ReadonlyArray<JsonSchema>
  readonly oneOf?: ReadonlyArray<JsonSchema>
  readonly $ref?: string
  readonly $defs?: Record<string, JsonSchema>
}

const schema = manifestJsonSchema() as JsonSchema
const join = (at: string, k: string) => (at ? `${at}.${k}` : k)
const resolve = (node: JsonSchema): JsonSchema =>
  node.$ref?.startsWith("#/$defs/") ? resolve(schema.$defs?.[node.$ref.slice("#/$defs/".length)] ?? {}) : node
const branches = (node: JsonSchema): ReadonlyArray<JsonSchema> => {
  const n = resolve(node)
  return [...(n.anyOf ?? []), ...(n.oneOf ?? [])].length > 0 ? [...(n.anyOf ?? []), ...(n.oneOf ?? [])].flatMap(branches) : [n]
}

/** Every object schema with named properties, with its location. */
const structs = (node: JsonSchema, at: string, out: Array<[string, JsonSchema]> = []): Array<[string, JsonSchema]> => {
  for (const n of branches(node)) {
    if (n.properties) {
      out.push([at || "(top level)", n])
      for (const [k, v] of Object.entries(n.properties)) structs(v, join(at, k), out)
    }
    if (typeof n.additionalProperties === "object") structs(n.additionalProperties, join(at, "*"), out)
    if (n.items) structs(n.items, `${at}[]`, out)
  }
  return out
}

/** Key paths the schema defines (records as `*`, arrays as `[]`). */
const schemaPaths = (node: JsonSchema, at: string, out: Set<string> = new Set()): Set<string> => {
  for (const n of branches(node)) {
    for (const [k, v] of Object.entries(n.properties ?? {})) {
      out.add(join(at, k))
      schemaPaths(v, join(at, k), out)
    }
    if (typeof n.additionalProperties === "object") schemaPaths(n.additionalProperties, join(at, "*"), out)
    if (n.items) schemaPaths(n.items, `${at}[]`, out)
  }
  return out
}

/** Key paths a document uses, named as schemaPaths names them. */
const dataPaths = (node: JsonSchema, value: unknown, at: string, out: Set<string> = new Set()): Set<string> => {
  for (const n of branches(node)) {
    if (Array.isArray(value) && n.items) for (const v of value) dataPaths(n.items, v, `${at}[]`, out)
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) {
        const prop = n.properties?.[k]
        if (prop) {
          out.add(join(at, k))
          dataPaths(prop, v, join(at, k), out)
        } else if (typeof n.additionalProperties === "object") {
          dataPaths(n.additionalProperties, v, join(at, "*"), out)
        }
      }
    }
  }
  return out
}

// strictTuples off: Schema.NonEmptyArray is emitted as prefixItems [x] + items x + minItems 1,
// which is valid 2020-12 but trips ajv's lint for fixed-length tuples.
const ajv = new Ajv2020({ allErrors: true, strict: true, strictTuples: false })
const validate = ajv.compile(schema)
const errorsOf = (doc: unknown) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`))

describe("example manifests", () => {
  it("are there", () => assert.includeMembers(examples, ["full.yaml", "minimal.yaml", "smolmachines.yaml"]))

  for (const f of examples) {
    it(`${f} validates against the JSON Schema`, () => {
      assert.deepStrictEqual(errorsOf(readExample(f)), [])
    })

    it.effect(`${f} loads through loadManifest and every agent in it plans`, () =>
      Effect.gen(function*() {
        const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-example-"))
        const loaded = yield* loadManifest({ cwd, manifestPath: path.join(examplesDir, f), env: {} })
        assert.isFalse(loaded.isDefault)
        const agents = Object.keys(loaded.manifest.agents)
        assert.isNotEmpty(agents)
        for (const agent of agents) {
          // prepare reads the prompt files and skill dirs the example names: they must exist.
          const plan = yield* prepare({ loaded, agent, cwd, env: {} })
          assert.strictEqual(plan.agent, agent)
        }
      }).pipe(Effect.provide(StateStoreLive.layerAt(fs.mkdtempSync(path.join(os.tmpdir(), "bb-example-state-"))))))
  }

  it("full.yaml uses every key of the manifest format", () => {
    const unused = [...schemaPaths(schema, "")].filter((p) => !dataPaths(schema, readExample("full.yaml"), "").has(p))
    assert.deepStrictEqual(unused, [], "add these to examples/full.yaml")
  })

  it.effect("full.yaml's prompt file loses its front matter; its skill is found", () =>
    Effect.gen(function*() {
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-example-"))
      const loaded = yield* loadManifest({ cwd, manifestPath: path.join(examplesDir, "full.yaml"), env: {} })
      const plan = yield* prepare({ loaded, agent: "reviewer", cwd, env: {} })
      assert.isTrue(plan.prompt.startsWith("You are a code reviewer."), plan.prompt.slice(0, 80))
      assert.notInclude(plan.prompt, "---")
      assert.deepStrictEqual(plan.skills, [{ name: "review", source: path.join(examplesDir, "skills/review") }])
      assert.isTrue(fs.existsSync(path.join(examplesDir, "skills/review/SKILL.md")))
    }).pipe(Effect.provide(StateStoreLive.layerAt(fs.mkdtempSync(path.join(os.tmpdir(), "bb-example-state-"))))))
})

describe("the manifest JSON Schema", () => {
  const minimal = () => readExample("minimal.yaml") as { agents: Record<string, Record<string, unknown>>; bottles: Record<string, Record<string, unknown>> }

  it("is draft 2020-12 and describes both sections", () => {
    assert.strictEqual((schema as { $schema?: string }).$schema, "https://json-schema.org/draft/2020-12/schema")
    assert.sameMembers(Object.keys(schema.properties ?? {}), ["agents", "bottles"])
  })

  it("closes every object it defines (additionalProperties: false), like the loader", () => {
    const open = structs(schema, "").filter(([, n]) => n.additionalProperties !== false).map(([at]) => at)
    assert.deepStrictEqual(open, [], "object schemas that accept unknown keys")
  })

  it("rejects an unknown key, at the top and nested", () => {
    const top = { ...minimal(), agent: {} }
    assert.isNotEmpty(errorsOf(top), "top-level typo `agent`")
    const nested = minimal()
    nested.bottles["default"] = { ...nested.bottles["default"], egress: { routs: [] } }
    assert.isNotEmpty(errorsOf(nested), "bottles.default.egress.routs")
    const route = minimal()
    route.bottles["default"] = { egress: { routes: [{ host: "api.anthropic.com", method: ["GET"] }] } }
    assert.isNotEmpty(errorsOf(route), "route key `method`")
  })

  it("rejects wrong types and unknown enum values", () => {
    const cases: ReadonlyArray<[string, Record<string, unknown>]> = [
      ["supervise as a string", { supervise: "yes" }],
      ["routes as a mapping", { egress: { routes: { host: "api.anthropic.com" } } }],
      ["a port as a string", { egress: { routes: [{ host: "api.anthropic.com", ports: ["443"] }] } }],
      ["an unknown backend", { backend: "kvm" }],
      ["an unknown method", { egress: { routes: [{ host: "api.anthropic.com", methods: ["BREW"] }] } }],
      ["env with a non-string value", { env: { DEBUG: 1 } }]
    ]
    for (const [what, bottle] of cases) {
      const doc = minimal()
      doc.bottles["default"] = bottle
      assert.isNotEmpty(errorsOf(doc), what)
    }
    const noBottle = minimal()
    noBottle.agents["claude"] = {}
    assert.isNotEmpty(errorsOf(noBottle), "agent without its required `bottle`")
  })
})
