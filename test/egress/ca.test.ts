import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ensureBottleCa } from "../../src/schema/BottleCa.ts"
import { egressDir } from "../../bundle/egress/paths.ts"

describe("bottle CA", () => {
  it.live("mints an ECDSA P-256 CA with a 0600 key, and reuses it", () =>
    Effect.gen(function*() {
      const root = yield* Effect.acquireRelease(Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "ca-"))), (d) =>
        Effect.promise(() => fs.rm(d, { recursive: true, force: true })))
      const dir = egressDir(root, "demo")
      assert.strictEqual(dir, path.join(root, "bottles", "demo", "egress"))
      const first = yield* ensureBottleCa(dir)
      const cert = new crypto.X509Certificate(first.certPem)
      assert.ok(cert.ca)
      assert.strictEqual(cert.publicKey.asymmetricKeyType, "ec")
      assert.strictEqual(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1")
      const st = yield* Effect.promise(() => fs.stat(first.keyPath))
      assert.strictEqual(st.mode & 0o777, 0o600)
      assert.notInclude(first.certPem, "PRIVATE KEY")
      const again = yield* ensureBottleCa(dir)
      assert.strictEqual(again.certPem, first.certPem)
      // A key that no longer matches the certificate is replaced.
      yield* Effect.promise(() => fs.writeFile(first.keyPath, crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" })))
      const fresh = yield* ensureBottleCa(dir)
      assert.notStrictEqual(fresh.certPem, first.certPem)
    }))
})
