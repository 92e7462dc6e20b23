/**
 * The per-bottle CA that egress uses to terminate the agent's TLS. Part of the shared contract
 * (src/schema): the launcher mints it on the host before the bundle starts (the agent gets the
 * certificate), and the egress daemon reuses it (or mints one when run on its own, `bottle
 * daemon egress`); both must agree on what a usable CA is and where its files are.
 *
 * Guarantees: an ECDSA P-256 CA (basicConstraints CA, pathLen 0, keyCertSign only), minted
 * once per bottle and reused while valid; the key file is written 0600 (atomically, never
 * world-readable for an instant) in a 0700 directory and is never copied anywhere — the
 * agent gets `ca.pem` only. A key that does not match the certificate, or a certificate
 * about to expire, is replaced by a fresh pair.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Schema } from "effect"

export const caCertIn = (dir: string): string => path.join(dir, "ca.pem")
export const caKeyIn = (dir: string): string => path.join(dir, "ca-key.pem")

export class BottleCaError extends Schema.TaggedError<BottleCaError>()("BottleCaError", { path: Schema.String, detail: Schema.String }) {
  override get message(): string {
    return `egress CA at ${this.path}: ${this.detail}`
  }
}

/** The X.509 library, loaded only to mint: reusing a CA (what the daemon does) needs node:crypto only. */
const loadX509 = async () => {
  const mod = await import("@peculiar/x509")
  // A CommonJS package: bundled, its exports may sit under `default`.
  const x509 = "cryptoProvider" in mod ? mod : (mod as unknown as { default: typeof mod }).default
  x509.cryptoProvider.set(globalThis.crypto)
  return x509
}

export interface BottleCa {
  readonly certPem: string
  readonly certPath: string
  readonly keyPath: string
}

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const
const VALID_DAYS = 365
const RENEW_BEFORE_DAYS = 7
const DAY_MS = 24 * 60 * 60 * 1000

const toPem = (der: ArrayBuffer, label: string): string =>
  `-----BEGIN ${label}-----\n${Buffer.from(der).toString("base64").replace(/.{1,64}/g, "$&\n")}-----END ${label}-----\n`

/** Mints a fresh CA: certificate and PKCS#8 key, both PEM. */
export const mintCa = async (commonName: string): Promise<{ certPem: string; keyPem: string }> => {
  const x509 = await loadX509()
  const keys = (await globalThis.crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"])) as crypto.webcrypto.CryptoKeyPair
  const now = Date.now()
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: crypto.randomBytes(16).toString("hex").replace(/^[89a-f]/, "1"),
    name: `CN=${commonName}, O=bot-bottle`,
    notBefore: new Date(now - 60 * 60 * 1000),
    notAfter: new Date(now + VALID_DAYS * DAY_MS),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)
    ]
  })
  const pkcs8 = await globalThis.crypto.subtle.exportKey("pkcs8", keys.privateKey)
  return { certPem: cert.toString("pem") + "\n", keyPem: toPem(pkcs8, "PRIVATE KEY") }
}

/** Is the existing pair usable: parses, key matches cert, EC P-256, not near expiry? */
const usable = (certPem: string, keyPem: string): boolean => {
  try {
    const cert = new crypto.X509Certificate(certPem)
    const key = crypto.createPrivateKey(keyPem)
    if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") return false
    if (!cert.ca || !cert.checkPrivateKey(key)) return false
    return new Date(cert.validTo).getTime() - Date.now() > RENEW_BEFORE_DAYS * DAY_MS
  } catch {
    return false
  }
}

const writeAtomic = async (file: string, data: string, mode: number) => {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`
  // `wx` + mode at creation: the key is never readable by others, even for an instant.
  const handle = await fs.open(tmp, "wx", mode)
  try {
    await handle.writeFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await fs.rename(tmp, file)
}

/**
 * Mint-or-reuse the bottle CA at `dir/ca.pem` + `dir/ca-key.pem` (0600). The launch program
 * runs this on the host before starting containers.
 */
export const ensureBottleCa = Effect.fn("ensureBottleCa")(function*(dir: string): Effect.fn.Return<BottleCa, BottleCaError> {
  const certPath = caCertIn(dir)
  const keyPath = caKeyIn(dir)
  const fail = (cause: unknown) => new BottleCaError({ path: dir, detail: cause instanceof Error ? cause.message : String(cause) })
  return yield* Effect.tryPromise({
    try: async () => {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 })
      const existing = await Promise.all([fs.readFile(certPath, "utf8"), fs.readFile(keyPath, "utf8")]).catch(() => undefined)
      if (existing && usable(existing[0], existing[1])) {
        // Tighten a key that somebody loosened; never serve a world-readable key.
        const st = await fs.stat(keyPath)
        if ((st.mode & 0o077) !== 0) await fs.chmod(keyPath, 0o600)
        return { certPem: existing[0], certPath, keyPath }
      }
      const { certPem, keyPem } = await mintCa(`bot-bottle egress CA ${path.basename(path.dirname(dir)) || "bottle"}`)
      await writeAtomic(keyPath, keyPem, 0o600)
      await writeAtomic(certPath, certPem, 0o644)
      return { certPem, certPath, keyPath }
    },
    catch: fail
  }).pipe(
    // The promise cannot be stopped: an interruption waits for it, or its writes (mkdir
    // included) would land after the caller's cleanup, bringing back a removed state dir with
    // a CA key in it.
    Effect.uninterruptible
  )
})
