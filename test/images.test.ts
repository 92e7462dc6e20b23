/** The image cache key: what must, and must not, change an image's tag. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { agentImageSource, baseImageOf, bundleImageSource, contextHash } from "../src/programs/images.ts"

describe("image tags", () => {
  it("name the base image the Dockerfiles build FROM", () => {
    expect(baseImageOf(agentImageSource())).toBe("node:22-bookworm-slim")
    expect(baseImageOf(bundleImageSource())).toBe("node:22-bookworm-slim")
  })

  it("change with the context's files, the extra CA bundle and the base image's id; nothing else", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-img-"))
    fs.writeFileSync(path.join(dir, "Dockerfile"), "ARG BASE_IMAGE=node:22-bookworm-slim\nFROM ${BASE_IMAGE}\n")
    fs.writeFileSync(path.join(dir, "run.sh"), "echo hi\n")
    const src = { name: "t", files: [{ at: "Dockerfile", from: path.join(dir, "Dockerfile") }, { at: "run.sh", from: path.join(dir, "run.sh") }] }
    const h = contextHash(src, "", "sha256:aaa")
    expect(contextHash(src, "", "sha256:aaa")).toBe(h)
    expect(contextHash({ ...src, files: [...src.files].reverse() }, "", "sha256:aaa"), "order-independent").toBe(h)
    expect(contextHash(src, "", "sha256:bbb"), "a new base image").not.toBe(h)
    expect(contextHash(src, "-----BEGIN CERTIFICATE-----", "sha256:aaa"), "extra CAs").not.toBe(h)
    fs.chmodSync(path.join(dir, "run.sh"), 0o755)
    const executable = contextHash(src, "", "sha256:aaa")
    expect(executable, "file mode").not.toBe(h)
    fs.writeFileSync(path.join(dir, "run.sh"), "echo bye\n")
    expect(contextHash(src, "", "sha256:aaa"), "file content").not.toBe(executable)
  })
})
