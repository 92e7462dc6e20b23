/**
 * A throwaway PKI for tests and benchmarks: a CA (standing in for a public root) and server
 * certificates for made-up host names, so upstreams speak real, verified TLS on loopback.
 */
import * as crypto from "node:crypto"
import * as x509 from "@peculiar/x509"
import { mintCa } from "../../../src/schema/BottleCa.ts"

x509.cryptoProvider.set(globalThis.crypto)

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const

export interface TestCa {
  readonly certPem: string
  readonly keyPem: string
}

export const makeTestCa = (): Promise<TestCa> => mintCa("bot-bottle test upstream root")

export const issueServerCert = async (ca: TestCa, hosts: ReadonlyArray<string>): Promise<{ certPem: string; keyPem: string }> => {
  const caCert = new x509.X509Certificate(ca.certPem)
  const caKey = await globalThis.crypto.subtle.importKey(
    "pkcs8",
    crypto.createPrivateKey(ca.keyPem).export({ type: "pkcs8", format: "der" }),
    ALG,
    false,
    ["sign"]
  )
  const keys = (await globalThis.crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as crypto.webcrypto.CryptoKeyPair
  const now = Date.now()
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: "01" + crypto.randomBytes(8).toString("hex"),
    subject: `CN=${hosts[0]}`,
    issuer: caCert.subject,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 30 * 86400_000),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(hosts.map((h) => ({ type: "dns" as const, value: h })))
    ]
  })
  const pkcs8 = await globalThis.crypto.subtle.exportKey("pkcs8", keys.privateKey)
  const keyPem = crypto.createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" }).export({ type: "pkcs8", format: "pem" }) as string
  return { certPem: cert.toString("pem"), keyPem }
}
