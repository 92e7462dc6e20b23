/** `bottle schema`: the manifest's JSON Schema, derived from the Schema itself. */
import { Console, Schema } from "effect"
import { Command } from "effect/cli"
import { Manifest } from "../schema/Manifest.ts"

export const manifestJsonSchema = () => {
  // Closed objects: the loader rejects unknown keys, so editors must flag them too.
  const doc = Schema.toJsonSchemaDocument(Manifest, { onExcessProperty: "error" })
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: "https://bot-bottle.dev/schema/bottle.yaml.json",
    ...doc.schema,
    ...(Object.keys(doc.definitions ?? {}).length ? { $defs: doc.definitions } : {})
  }
}

export const schema = Command.make("schema", {}, () => Console.log(JSON.stringify(manifestJsonSchema(), null, 2))).pipe(
  Command.withDescription("Print the manifest's JSON Schema (for editors)"),
  Command.withExamples([{ command: "bottle schema > bottle.schema.json", description: "For yaml-language-server: # yaml-language-server: $schema=./bottle.schema.json" }])
)
