var __defProp = Object.defineProperty;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __esm = (fn, res, err) => function __init() {
  if (err) throw err[0];
  try {
    return fn && (res = (0, fn[__getOwnPropNames(fn)[0]])(fn = 0)), res;
  } catch (e) {
    throw err = [e], e;
  }
};
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};

// src/schema/Route.ts
import { Schema } from "effect";
var hostLabel, hostPattern, RouteHost, HttpMethod, EnvVarName, HeaderName, PathPrefix, RouteAuth, RouteRole, Route, RoutesFile, hostMatches;
var init_Route = __esm({
  "src/schema/Route.ts"() {
    "use strict";
    hostLabel = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
    hostPattern = new RegExp(`^(?:\\*\\.)?(?:${hostLabel}\\.)+(?=[a-z0-9-]*[a-z])(?!0x[0-9a-f]*$)${hostLabel}$`, "u");
    RouteHost = Schema.String.pipe(
      Schema.check(
        Schema.isPattern(hostPattern, {
          message: 'expected a lower-case DNS host name like "api.example.com" or "*.example.com" (no IP, port, scheme or path)'
        })
      ),
      Schema.annotate({ description: "Exact host name, or *.suffix for any subdomain of suffix" })
    );
    HttpMethod = Schema.Literals(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
    EnvVarName = Schema.String.pipe(
      Schema.check(Schema.isPattern(/^[A-Za-z_][A-Za-z0-9_]*$/u, { message: "expected an environment variable name like GITHUB_TOKEN" }))
    );
    HeaderName = Schema.String.pipe(
      Schema.check(Schema.isPattern(/^[a-z0-9!#$%&'*+.^_`|~-]+$/u, { message: "expected a lower-case HTTP header name like authorization" }))
    );
    PathPrefix = Schema.String.pipe(
      Schema.check(Schema.isPattern(/^\/[^\s?#]*$/u, { message: "expected a path prefix starting with / (no query or fragment)" }))
    );
    RouteAuth = Schema.Struct({
      header: Schema.optionalKey(HeaderName).annotate({ description: "Header carrying the credential (default authorization)" }),
      scheme: Schema.optionalKey(Schema.String).annotate({ description: 'Prefix before the token, e.g. "Bearer"' }),
      token_env: EnvVarName.annotate({ description: "Name of the env var (on the host / in the bundle) holding the real token" }),
      alternates: Schema.optionalKey(Schema.Array(HeaderName)).annotate({
        description: "Other headers an agent may put a credential in (e.g. x-api-key); stripped too"
      })
    });
    RouteRole = Schema.Literals(["claude_code_oauth", "anthropic_api_key"]);
    Route = Schema.Struct({
      host: RouteHost,
      ports: Schema.optionalKey(Schema.Array(Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))))).annotate({
        description: "Ports CONNECT may reach on this host (default [443])"
      }),
      paths: Schema.optionalKey(Schema.Array(PathPrefix)).annotate({ description: "Allowed path prefixes (default: any)" }),
      methods: Schema.optionalKey(Schema.Array(HttpMethod)).annotate({ description: "Allowed methods (default: any)" }),
      auth: Schema.optionalKey(RouteAuth),
      roles: Schema.optionalKey(Schema.Array(RouteRole)),
      allow_private_ips: Schema.optionalKey(Schema.Boolean).annotate({
        description: "Let this host resolve to a loopback, private (RFC 1918), carrier-grade NAT or unique-local address (an internal service). Default false: such a name is refused at connect time. Link-local (cloud metadata), multicast and unspecified addresses are refused always."
      })
    });
    RoutesFile = Schema.Struct({
      routes: Schema.Array(Route)
    });
    hostMatches = (pattern, host) => pattern.startsWith("*.") ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern;
  }
});

// src/services/StateStore.ts
import { Context, Schema as Schema2 } from "effect";
var StateIo, StateNotFound, StateExists, StateExhausted, StateCorrupt, StateError, StateStore;
var init_StateStore = __esm({
  "src/services/StateStore.ts"() {
    "use strict";
    StateIo = class extends Schema2.TaggedClass()("Io", { path: Schema2.String, message: Schema2.String }) {
    };
    StateNotFound = class extends Schema2.TaggedClass()("NotFound", { slug: Schema2.String }) {
    };
    StateExists = class extends Schema2.TaggedClass()("Exists", { slug: Schema2.String }) {
    };
    StateExhausted = class extends Schema2.TaggedClass()("Exhausted", { pool: Schema2.String }) {
    };
    StateCorrupt = class extends Schema2.TaggedClass()("Corrupt", { path: Schema2.String, message: Schema2.String }) {
    };
    StateError = class extends Schema2.TaggedError()("StateError", {
      reason: Schema2.Union([StateIo, StateNotFound, StateExists, StateExhausted, StateCorrupt])
    }) {
      get message() {
        const r = this.reason;
        switch (r._tag) {
          case "Io":
            return `state dir: ${r.path}: ${r.message}`;
          case "NotFound":
            return `no bottle named "${r.slug}" (see \`bottle ls\`)`;
          case "Exists":
            return `bottle ${r.slug} already exists: \`bottle resume ${r.slug}\`, or \`bottle stop ${r.slug} --purge\` first (or pick another --name)`;
          case "Exhausted":
            return `no free ${r.pool} left: stop or clean up other bottles (\`bottle cleanup\`)${r.pool === "subnet" ? "; subnets other networks on the Docker engine use (anyone's: `docker network ls`) are not free either" : ""}`;
          case "Corrupt":
            return `state file ${r.path} is unreadable: ${r.message}`;
        }
      }
    };
    StateStore = class extends Context.Service()("bot-bottle/StateStore") {
    };
  }
});

// src/programs/grants.ts
import { Effect as Effect2, Option, Schema as Schema3 } from "effect";
var KNOWN_HOMES, MODEL_API_TOKENS, GrantRecord, GrantsFile, GRANTS_FILE, sameGrant, isUnrestricted, atHome, grantsOf, readGrants, pendingGrants, approveGrants, describeGrant;
var init_grants = __esm({
  "src/programs/grants.ts"() {
    "use strict";
    init_Route();
    init_StateStore();
    KNOWN_HOMES = {
      CLAUDE_CODE_OAUTH_TOKEN: ["api.anthropic.com"],
      ANTHROPIC_API_KEY: ["api.anthropic.com"],
      OPENAI_API_KEY: ["api.openai.com"],
      GITHUB_TOKEN: ["api.github.com", "github.com", "uploads.github.com"],
      GH_TOKEN: ["api.github.com", "github.com", "uploads.github.com"],
      GITLAB_TOKEN: ["gitlab.com"],
      NPM_TOKEN: ["registry.npmjs.org"]
    };
    MODEL_API_TOKENS = /* @__PURE__ */ new Set(["CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"]);
    GrantRecord = Schema3.Struct({
      token_env: Schema3.String,
      host: Schema3.String,
      unrestricted: Schema3.optionalKey(Schema3.Literal(true)),
      approved_at: Schema3.String,
      manifest: Schema3.String
    });
    GrantsFile = Schema3.Struct({ grants: Schema3.Array(GrantRecord) });
    GRANTS_FILE = "grants.json";
    sameGrant = (a, b) => a.token_env === b.token_env && a.host === b.host && (a.unrestricted ?? false) === (b.unrestricted ?? false);
    isUnrestricted = (r) => r.auth !== void 0 && (r.paths === void 0 || r.paths.includes("/")) && (r.methods === void 0 || HttpMethod.literals.every((m) => r.methods.includes(m)));
    atHome = (g) => {
      const homes = KNOWN_HOMES[g.token_env];
      return homes !== void 0 && !g.host.startsWith("*.") && homes.some((h) => hostMatches(h, g.host));
    };
    grantsOf = (plan) => {
      const out = [];
      for (const r of plan.egress.routes) {
        if (!r.auth) continue;
        const base = { token_env: r.auth.token_env, host: r.host };
        const g = isUnrestricted(r) && !MODEL_API_TOKENS.has(base.token_env) && atHome(base) ? { ...base, unrestricted: true } : base;
        if (!out.some((x) => sameGrant(x, g))) out.push(g);
      }
      return out;
    };
    readGrants = Effect2.gen(function* () {
      const state = yield* StateStore;
      const file = yield* state.readRootJson(GRANTS_FILE, GrantsFile).pipe(
        Effect2.mapError(
          (e) => e.reason._tag === "Corrupt" ? new StateError({ reason: new StateCorrupt({ path: e.reason.path, message: `not a grants file (${e.reason.message.split("\n")[0]}); fix or delete it` }) }) : e
        )
      );
      return Option.getOrElse(file, () => ({ grants: [] }));
    });
    pendingGrants = (plan) => Effect2.gen(function* () {
      const needed = grantsOf(plan).filter((g) => g.unrestricted === true || !atHome(g));
      if (needed.length === 0) return [];
      const approved = (yield* readGrants).grants;
      return needed.filter((g) => !approved.some((a) => sameGrant(a, g)));
    });
    approveGrants = (grants, manifest) => Effect2.gen(function* () {
      const current = yield* readGrants;
      const now = (/* @__PURE__ */ new Date()).toISOString();
      const next = {
        grants: [...current.grants, ...grants.filter((g) => !current.grants.some((a) => sameGrant(a, g))).map((g) => ({ ...g, approved_at: now, manifest }))]
      };
      yield* (yield* StateStore).writeRootJson(GRANTS_FILE, next);
    });
    describeGrant = (g) => `$${g.token_env} \u2192 ${g.host}${g.unrestricted ? " (its home, but any path and method)" : ""}`;
  }
});

// src/cli/render.ts
var PLACEHOLDERS, renderPlan, describeNetwork, visible;
var init_render = __esm({
  "src/cli/render.ts"() {
    "use strict";
    init_grants();
    PLACEHOLDERS = /* @__PURE__ */ new Set(["egress-placeholder"]);
    renderPlan = (plan, manifestLabel, pendingGrants2 = []) => {
      const lines2 = [];
      const row = (k, v) => lines2.push(`  ${k.padEnd(10)} ${v.split("\n").map(visible).join("\n")}`);
      lines2.push(`Bottle ${plan.slug}  (agent ${plan.agent}, bottle ${plan.bottle}, backend ${plan.backend})`);
      row("manifest", manifestLabel);
      row("workspace", plan.mountCwd ? `${plan.cwd} MOUNTED read-write at ${plan.workdir} (the agent edits these files in place; .git, bottle.yaml, editor and shell auto-run files stay read-only)` : plan.copyCwd ? `${plan.cwd} copied to ${plan.workdir}` : `${plan.workdir} (empty; copy_cwd is off)`);
      row("network", describeNetwork(plan));
      row("daemons", plan.daemons.join(", "));
      if (plan.egress.routes.length === 0) row("egress", "no routes: every request is refused");
      plan.egress.routes.forEach((r, i) => {
        const scope = [
          r.methods ? r.methods.join("|") : "any method",
          r.paths ? r.paths.join(" ") : "any path",
          `port ${(r.ports ?? [443]).join(",")}`
        ].join(", ");
        const auth = r.auth ? `; injects ${r.auth.header ?? "authorization"}: ${r.auth.scheme ? `${r.auth.scheme} ` : ""}$${r.auth.token_env} (${plan.egress.tokens.find((t) => t.env === r.auth.token_env)?.present ? "set" : "NOT SET on this host"})` : "";
        const reach = r.allow_private_ips ? "; MAY RESOLVE TO PRIVATE ADDRESSES (allow_private_ips)" : "";
        const pending = (unrestricted) => r.auth !== void 0 && pendingGrants2.some((g) => g.host === r.host && g.token_env === r.auth.token_env && g.unrestricted === true === unrestricted);
        const grant = r.auth && pending(false) ? `; NEW CREDENTIAL GRANT: not where $${r.auth.token_env} is known to belong (start asks you to approve it)` : "";
        const open3 = r.auth && isUnrestricted(r) ? `; UNRESTRICTED TOKEN ROUTE: $${r.auth.token_env} \u2192 ${r.host}, any path and method${pending(true) ? " (the account's whole power there: start asks you to approve it; limit it with paths or methods)" : MODEL_API_TOKENS.has(r.auth.token_env) ? " (its model API)" : ""}` : "";
        row(i === 0 ? "egress" : "", `${r.host} (${scope})${auth}${reach}${grant}${open3}`);
      });
      if (plan.git.upstreams.length === 0) row("git", "no upstreams");
      plan.git.upstreams.forEach(
        (u, i) => row(i === 0 ? "git" : "", `${u.name} \u2192 ${u.url} (push ${(u.push?.allow ?? ["refs/heads/bottle/*"]).join(" ")}${u.push?.force ? ", force" : ""}${u.deploy_key ? `; deploy key on ${u.deploy_key.repo}, revoked at teardown` : ""})`)
      );
      row("supervise", plan.supervise ? "on (agent can ask for approval)" : "off");
      row("command", plan.command.join(" "));
      row("prompt", plan.prompt.trim() ? `${plan.prompt.length} characters` : "none");
      if (plan.skills.length > 0) row("skills", plan.skills.map((s) => `${s.name} (${s.source})`).join(", "));
      const env = Object.entries(plan.env).filter(([k]) => !/^(https?_proxy|no_proxy)$/i.test(k) || k === k.toUpperCase()).map(([k, v]) => `${k}=${PLACEHOLDERS.has(v) ? `${v} (not a secret)` : v}`);
      row("env", env.join("\n" + " ".repeat(13)));
      const res = [plan.resources.cpus !== void 0 ? `${plan.resources.cpus} cpus` : "", plan.resources.memory ? `memory ${plan.resources.memory}` : ""].filter(Boolean);
      row("resources", res.length ? res.join(", ") : "engine defaults");
      return lines2.join("\n");
    };
    describeNetwork = (plan) => {
      const rt = plan.runtime;
      switch (rt.backend) {
        case "docker":
          return `internal ${rt.internalNetwork} ${plan.network.subnet} (bundle ${plan.network.bundleIp}); egress ${rt.egressNetwork} (bundle only)`;
        case "smolmachines":
          return `bundle on ${rt.bundleNetwork} ${plan.network.subnet} (bundle ${plan.network.bundleIp}); VM ${rt.machine} may reach ${plan.network.bundleIp}/32 only`;
      }
    };
    visible = (s) => (
      // eslint-disable-next-line no-control-regex
      s.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)
    );
  }
});

// src/dash/model.ts
var WINDOW_MS, countEgress, age, egressText, fit;
var init_model = __esm({
  "src/dash/model.ts"() {
    "use strict";
    init_render();
    WINDOW_MS = 5 * 6e4;
    countEgress = (entries, now) => {
      let allowed = 0;
      let denied = 0;
      const since = now - WINDOW_MS;
      for (const e of entries) {
        const t = Date.parse(e.time);
        if (!(t >= since && t <= now + 6e4)) continue;
        if (e.decision === "allow") allowed += 1;
        else denied += e.count ?? 1;
      }
      return { allowed, denied };
    };
    age = (iso, now) => {
      const t = Date.parse(iso);
      if (!Number.isFinite(t)) return "";
      const s = Math.max(0, Math.round((now - t) / 1e3));
      if (s < 60) return `${s}s`;
      if (s < 3600) return `${Math.floor(s / 60)}m`;
      if (s < 86400) return `${Math.floor(s / 3600)}h`;
      return `${Math.floor(s / 86400)}d`;
    };
    egressText = (e) => {
      const hhmmss = e.time.slice(11, 19);
      const verdict = e.decision === "allow" ? "ALLOW" : e.decision === "deny" ? "DENY " : e.decision === "dlp-block" ? "DLP  " : "ERROR";
      const count = e.count && e.count > 1 ? ` \xD7${e.count}` : "";
      return `${hhmmss} ${verdict} ${visible(e.method)} ${visible(e.host)}${visible(e.path)} ${e.status} ${e.bytes_in}/${e.bytes_out}B ${visible(e.rule)}${count}`;
    };
    fit = (s, width) => width <= 0 ? "" : s.length <= width ? s : `${s.slice(0, Math.max(0, width - 1))}\u2026`;
  }
});

// src/dash/components/theme.tsx
import { createContext, useContext } from "react";
var ColorContext, useTint, useBorderTint, statusColor;
var init_theme = __esm({
  "src/dash/components/theme.tsx"() {
    "use strict";
    ColorContext = createContext(true);
    useTint = () => {
      const on = useContext(ColorContext);
      return (color) => on && color !== void 0 ? { color } : {};
    };
    useBorderTint = () => {
      const on = useContext(ColorContext);
      return (color) => on && color !== void 0 ? { borderColor: color } : {};
    };
    statusColor = (status) => status === "running" ? "green" : status === "stopped" ? "gray" : status === "unknown" ? "yellow" : "red";
  }
});

// src/dash/components/Alerts.tsx
import { Box, Text } from "ink";
import { jsxs } from "react/jsx-runtime";
var Alerts;
var init_Alerts = __esm({
  "src/dash/components/Alerts.tsx"() {
    "use strict";
    init_render();
    init_model();
    init_theme();
    Alerts = (props) => {
      const tint = useTint();
      const border = useBorderTint();
      if (props.alerts.length === 0) return null;
      const ordered = [...props.alerts].sort((a, b) => (a.kind === "revocation" ? 0 : 1) - (b.kind === "revocation" ? 0 : 1) || a.id - b.id);
      const shown = ordered.slice(0, 3);
      return /* @__PURE__ */ jsxs(Box, { flexDirection: "column", borderStyle: "single", ...border(ordered[0].kind === "info" ? "cyan" : "red"), width: props.width, children: [
        shown.map((a) => /* @__PURE__ */ jsxs(Text, { ...tint(a.kind === "info" ? void 0 : "red"), bold: a.kind === "revocation", wrap: "wrap", children: [
          a.kind === "revocation" ? "!! " : a.kind === "error" ? "! " : "",
          visible(a.text)
        ] }, a.id)),
        /* @__PURE__ */ jsxs(Text, { dimColor: true, children: [
          props.alerts.length > shown.length ? `(+${props.alerts.length - shown.length} more) ` : "",
          "c dismisses"
        ] })
      ] });
    };
  }
});

// src/dash/components/BottleList.tsx
import { Box as Box2, Text as Text2 } from "ink";
import { jsx, jsxs as jsxs2 } from "react/jsx-runtime";
var pad, padStart, LIST_HEADER, BottleList;
var init_BottleList = __esm({
  "src/dash/components/BottleList.tsx"() {
    "use strict";
    init_model();
    init_theme();
    pad = (s, n) => fit(s, n).padEnd(n);
    padStart = (s, n) => fit(s, n).padStart(n);
    LIST_HEADER = `  ${pad("NAME", 18)} ${pad("LABEL", 12)} ${pad("STATUS", 9)} ${pad("BACKEND", 7)} ${padStart("AGE", 4)} ${padStart("OK/NO 5m", 9)} ${padStart("PUSH", 4)} ${padStart("ASK", 4)}`;
    BottleList = (props) => {
      const tint = useTint();
      if (!props.loaded) return /* @__PURE__ */ jsx(Text2, { children: "loading bottles\u2026" });
      if (props.rows.length === 0) return /* @__PURE__ */ jsx(Text2, { children: "no bottles \u2014 press s to start one" });
      const visible2 = Math.max(1, props.height - 1);
      const first = Math.min(Math.max(0, props.selected - visible2 + 1), Math.max(0, props.rows.length - visible2));
      return /* @__PURE__ */ jsxs2(Box2, { flexDirection: "column", children: [
        /* @__PURE__ */ jsx(Text2, { bold: true, children: LIST_HEADER }),
        props.rows.slice(first, first + visible2).map((r, i) => {
          const sel = first + i === props.selected;
          return /* @__PURE__ */ jsxs2(Text2, { inverse: sel, wrap: "truncate", children: [
            sel ? "> " : "  ",
            pad(r.slug, 18),
            " ",
            /* @__PURE__ */ jsx(Text2, { ...tint(r.color), children: pad(r.label, 12) }),
            " ",
            /* @__PURE__ */ jsx(Text2, { ...tint(statusColor(r.status)), children: pad(r.status, 9) }),
            " ",
            pad(r.backend, 7),
            " ",
            padStart(age(r.createdAt, props.now), 4),
            " ",
            padStart(`${r.egress.allowed}/${r.egress.denied}`, 9),
            " ",
            padStart(String(r.pushes), 4),
            " ",
            /* @__PURE__ */ jsx(Text2, { ...tint(r.pending > 0 ? "yellow" : void 0), bold: r.pending > 0, children: padStart(r.pending > 0 ? `${r.pending}!` : "0", 4) })
          ] }, r.slug);
        })
      ] });
    };
  }
});

// src/dash/components/Detail.tsx
import { Box as Box3, Text as Text3 } from "ink";
import { jsx as jsx2, jsxs as jsxs3 } from "react/jsx-runtime";
var Detail;
var init_Detail = __esm({
  "src/dash/components/Detail.tsx"() {
    "use strict";
    init_render();
    init_model();
    init_theme();
    Detail = (props) => {
      const tint = useTint();
      const { row, detail, width } = props;
      const approvals = detail.approvals;
      const pending = approvals.filter((a) => a.status === "pending").length;
      const approvalLines = Math.min(5, Math.max(1, approvals.length));
      const pushLines = Math.min(3, Math.max(1, detail.pushes.length));
      const egressRoom = Math.max(1, props.height - 4 - approvalLines - pushLines);
      const firstApproval = Math.min(Math.max(0, props.selected - approvalLines + 1), Math.max(0, approvals.length - approvalLines));
      return /* @__PURE__ */ jsxs3(Box3, { flexDirection: "column", width, children: [
        /* @__PURE__ */ jsxs3(Text3, { wrap: "truncate", children: [
          /* @__PURE__ */ jsx2(Text3, { bold: true, children: row.slug }),
          " ",
          /* @__PURE__ */ jsx2(Text3, { ...tint(row.color), children: row.label }),
          " ",
          /* @__PURE__ */ jsx2(Text3, { ...tint(statusColor(row.status)), children: row.status }),
          ` ${row.backend} \xB7 up ${age(row.createdAt, props.now) || "?"} \xB7 egress ${row.egress.allowed} ok / ${row.egress.denied} refused (5 min) \xB7 ${row.pushes} pushes`
        ] }),
        /* @__PURE__ */ jsx2(Text3, { bold: true, ...tint(pending > 0 ? "yellow" : void 0), children: `Approvals (${pending} pending)` }),
        approvals.length === 0 ? /* @__PURE__ */ jsx2(Text3, { dimColor: true, children: "  none" }) : approvals.slice(firstApproval, firstApproval + approvalLines).map((a, i) => {
          const sel = firstApproval + i === props.selected;
          const mark = a.status === "pending" ? "?" : a.status === "approved" ? "\u2713" : a.status === "denied" ? "\u2717" : "-";
          const note = a.note ? ` \u2014 ${visible(a.note)}` : "";
          return /* @__PURE__ */ jsx2(Text3, { inverse: sel, wrap: "truncate", ...tint(a.status === "pending" ? "yellow" : void 0), children: fit(`${sel ? ">" : " "} ${mark} ${a.status.padEnd(8)} ${visible(a.kind).padEnd(10)} ${visible(a.title)}${note} [${visible(a.id)}]`, width) }, a.id);
        }),
        /* @__PURE__ */ jsx2(Text3, { bold: true, children: `Pushes (${row.pushes})` }),
        detail.pushes.length === 0 ? /* @__PURE__ */ jsx2(Text3, { dimColor: true, children: "  none" }) : detail.pushes.slice(-pushLines).map((p, i) => /* @__PURE__ */ jsx2(Text3, { wrap: "truncate", children: fit(`  ${p.time.slice(11, 19)} ${visible(p.ref)} ${visible(p.outcome)}`, width) }, i)),
        /* @__PURE__ */ jsx2(Text3, { bold: true, children: "Egress (newest last)" }),
        detail.egress.length === 0 ? /* @__PURE__ */ jsx2(Text3, { dimColor: true, children: "  no requests yet" }) : detail.egress.slice(-egressRoom).map((e, i) => /* @__PURE__ */ jsx2(Text3, { wrap: "truncate", ...tint(e.decision === "allow" ? void 0 : "red"), children: fit(`  ${egressText(e)}`, width) }, i))
      ] });
    };
  }
});

// src/dash/components/HelpLine.tsx
import { Text as Text4 } from "ink";
import { jsx as jsx3 } from "react/jsx-runtime";
var HELP, HelpLine;
var init_HelpLine = __esm({
  "src/dash/components/HelpLine.tsx"() {
    "use strict";
    init_model();
    HELP = {
      list: "\u2191\u2193 select \xB7 enter detail \xB7 s start \xB7 x stop \xB7 o terminal \xB7 c dismiss \xB7 q quit",
      detail: "\u2191\u2193 approval \xB7 a approve \xB7 d deny \xB7 o terminal \xB7 x stop \xB7 esc back \xB7 q quit",
      modal: "y confirm \xB7 n/esc cancel \xB7 \u2191\u2193 scroll",
      progress: "launching\u2026 (esc hides when done)",
      note: "type a note \xB7 enter send \xB7 esc cancel"
    };
    HelpLine = (props) => /* @__PURE__ */ jsx3(Text4, { dimColor: true, children: fit(HELP[props.mode], props.width) });
  }
});

// src/cli/progress.ts
import { Effect as Effect3 } from "effect";
var LABELS;
var init_progress = __esm({
  "src/cli/progress.ts"() {
    "use strict";
    LABELS = {
      state: "writing bottle state",
      lease: "leasing the bottle's addresses",
      ca: "minting the bottle CA",
      "deploy-keys": "creating deploy keys",
      network: "creating networks",
      images: "checking images",
      bundle: "starting sidecar bundle",
      "bundle:ready": "waiting for the sidecar bundle to be ready",
      sandbox: "starting agent",
      provision: "provisioning agent",
      attach: "attaching to the agent"
    };
  }
});

// src/services/Docker.ts
import { Context as Context2, Schema as Schema4 } from "effect";
var LABEL_SLUG, LABEL_ROLE, LABEL_ROOT, DockerCommandFailed, DockerNotFound, DockerUnavailable, DockerDecodeFailed, DockerSubnetOverlap, DockerError, ResourceKind, Docker;
var init_Docker = __esm({
  "src/services/Docker.ts"() {
    "use strict";
    LABEL_SLUG = "bot-bottle.slug";
    LABEL_ROLE = "bot-bottle.role";
    LABEL_ROOT = "bot-bottle.root";
    DockerCommandFailed = class extends Schema4.TaggedClass()("CommandFailed", {
      argv: Schema4.Array(Schema4.String),
      exitCode: Schema4.Number,
      stderr: Schema4.String
    }) {
    };
    DockerNotFound = class extends Schema4.TaggedClass()("NotFound", { what: Schema4.String }) {
    };
    DockerUnavailable = class extends Schema4.TaggedClass()("Unavailable", { message: Schema4.String }) {
    };
    DockerDecodeFailed = class extends Schema4.TaggedClass()("DecodeFailed", { message: Schema4.String }) {
    };
    DockerSubnetOverlap = class extends Schema4.TaggedClass()("SubnetOverlap", {
      network: Schema4.String,
      subnet: Schema4.String,
      stderr: Schema4.String
    }) {
    };
    DockerError = class extends Schema4.TaggedError()("DockerError", {
      reason: Schema4.Union([DockerCommandFailed, DockerNotFound, DockerUnavailable, DockerDecodeFailed, DockerSubnetOverlap])
    }) {
      get message() {
        const r = this.reason;
        switch (r._tag) {
          case "CommandFailed":
            return `docker ${r.argv.slice(1, 3).join(" ")} failed (exit ${r.exitCode}): ${r.stderr.trim().split("\n").slice(-3).join(" / ")}`;
          case "NotFound":
            return `docker: ${r.what} not found`;
          case "Unavailable":
            return `the Docker engine is not reachable: ${r.message}`;
          case "DecodeFailed":
            return `docker printed output we could not decode: ${r.message}`;
          case "SubnetOverlap":
            return `docker could not create network ${r.network}: subnet ${r.subnet} overlaps a network the engine already has`;
        }
      }
    };
    ResourceKind = Schema4.Literals(["container", "network", "volume"]);
    Docker = class extends Context2.Service()("bot-bottle/Docker") {
    };
  }
});

// src/programs/assets.ts
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
var cached, packageRoot;
var init_assets = __esm({
  "src/programs/assets.ts"() {
    "use strict";
    packageRoot = () => {
      if (cached) return cached;
      let dir = path.dirname(fileURLToPath(import.meta.url));
      for (; ; ) {
        const pj = path.join(dir, "package.json");
        if (fs.existsSync(pj) && JSON.parse(fs.readFileSync(pj, "utf8")).name === "bot-bottle") {
          cached = dir;
          return dir;
        }
        const parent = path.dirname(dir);
        if (parent === dir) throw new Error("bot-bottle: cannot find the package root (package.json)");
        dir = parent;
      }
    };
  }
});

// src/programs/images.ts
import { createHash } from "node:crypto";
import * as fs2 from "node:fs";
import * as os from "node:os";
import * as path2 from "node:path";
import { Effect as Effect5 } from "effect";
var walk, sharedBuildScripts, agentImageSource, bundleImageSource, readExtraCa, baseImageOf, contextHash, imageTag, baseIdOf, baseImageIds, ensureImage;
var init_images = __esm({
  "src/programs/images.ts"() {
    "use strict";
    init_Docker();
    init_assets();
    walk = (dir, prefix) => fs2.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const from = path2.join(dir, e.name);
      const at = prefix ? `${prefix}/${e.name}` : e.name;
      return e.isDirectory() ? walk(from, at) : [{ at, from }];
    });
    sharedBuildScripts = () => ["install-extra-ca.sh", "apt-install.sh"].map((f) => ({ at: f, from: path2.join(packageRoot(), "scripts", f) }));
    agentImageSource = () => ({
      name: "agent",
      files: [...walk(path2.join(packageRoot(), "agent-image"), ""), ...sharedBuildScripts()]
    });
    bundleImageSource = () => {
      const root = packageRoot();
      return {
        name: "bundle",
        files: [
          ...walk(path2.join(root, "bundle"), "").filter((f) => f.at === "Dockerfile"),
          ...sharedBuildScripts(),
          ...fs2.existsSync(path2.join(root, "dist", "bottle.mjs")) ? walk(path2.join(root, "dist"), "dist").filter((f) => f.at.endsWith(".mjs")) : [{ at: "dist/bottle.mjs", from: path2.join(root, "dist", "bottle.mjs") }]
        ]
      };
    };
    readExtraCa = (env) => {
      const p = env["BOTTLE_EXTRA_CA_CERTS"];
      if (!p) return "";
      return fs2.readFileSync(p, "utf8");
    };
    baseImageOf = (src) => {
      const dockerfile = src.files.find((f) => f.at === "Dockerfile");
      if (!dockerfile) return void 0;
      return fs2.readFileSync(dockerfile.from, "utf8").match(/^ARG BASE_IMAGE=(\S+)\s*$/m)?.[1];
    };
    contextHash = (src, extraCa, baseId = "") => {
      const h = createHash("sha256");
      h.update(`base\0${baseId}\0`);
      for (const f of [...src.files].sort((a, b) => a.at.localeCompare(b.at))) {
        const st = fs2.statSync(f.from);
        h.update(`${f.at}\0${st.mode & 73 ? "x" : "-"}\0${st.size}\0`);
        h.update(fs2.readFileSync(f.from));
      }
      h.update(`extra-ca.pem\0${extraCa}`);
      return h.digest("hex").slice(0, 16);
    };
    imageTag = (src, hash) => `bot-bottle/${src.name}:${hash}`;
    baseIdOf = (base) => Effect5.gen(function* () {
      const docker = yield* Docker;
      return yield* docker.imageId(base).pipe(Effect5.catch(() => docker.pullImage(base).pipe(Effect5.andThen(docker.imageId(base)))));
    });
    baseImageIds = Effect5.fn("baseImageIds")(function* (sources) {
      const bases = [...new Set(sources.map(baseImageOf).filter((b) => b !== void 0))];
      const ids = yield* Effect5.forEach(bases, baseIdOf, { concurrency: "unbounded" });
      return new Map(bases.map((b, i) => [b, ids[i]]));
    });
    ensureImage = Effect5.fn("ensureImage")(function* (src, options) {
      const docker = yield* Docker;
      const extraCa = yield* Effect5.try({
        try: () => readExtraCa(options.env),
        catch: (e) => new DockerError({ reason: new DockerCommandFailed({ argv: ["read", options.env["BOTTLE_EXTRA_CA_CERTS"] ?? ""], exitCode: 1, stderr: `BOTTLE_EXTRA_CA_CERTS: ${e.message}` }) })
      });
      const missing = src.files.find((f) => !fs2.existsSync(f.from));
      if (missing) {
        return yield* new DockerError({
          reason: new DockerCommandFailed({ argv: ["build", src.name], exitCode: 1, stderr: `${missing.from} is missing (run \`npm run build\` first?)` })
        });
      }
      const base = baseImageOf(src);
      const baseId = base === void 0 ? "" : options.baseIds?.get(base) ?? (yield* baseIdOf(base));
      const tag = imageTag(src, contextHash(src, extraCa, baseId));
      if (yield* docker.imageExists(tag)) return { tag, built: false };
      const ctx = yield* Effect5.acquireRelease(
        Effect5.sync(() => fs2.mkdtempSync(path2.join(os.tmpdir(), `bottle-build-${src.name}-`))),
        (dir) => Effect5.sync(() => fs2.rmSync(dir, { recursive: true, force: true }))
      );
      yield* Effect5.sync(() => {
        for (const f of src.files) {
          fs2.mkdirSync(path2.dirname(path2.join(ctx, f.at)), { recursive: true });
          fs2.copyFileSync(f.from, path2.join(ctx, f.at));
          fs2.chmodSync(path2.join(ctx, f.at), fs2.statSync(f.from).mode & 511);
        }
        fs2.writeFileSync(path2.join(ctx, "extra-ca.pem"), extraCa);
      });
      yield* docker.build({
        context: ctx,
        tag,
        labels: { "bot-bottle.image": src.name },
        ...options.onProgress ? { onProgress: options.onProgress } : {}
      });
      for (const ref of yield* docker.imageRefs(`bot-bottle/${src.name}`)) {
        if (ref !== tag) yield* docker.removeImage(ref).pipe(Effect5.ignore);
      }
      return { tag, built: true };
    }, Effect5.scoped);
  }
});

// src/providers/claude.ts
var SYSTEM_CA_BUNDLE, AGENT_HOME, PROMPT_PATH, MCP_CONFIG_PATH, SKILLS_DIR, PLACEHOLDER, claude;
var init_claude = __esm({
  "src/providers/claude.ts"() {
    "use strict";
    SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
    AGENT_HOME = "/home/node";
    PROMPT_PATH = "/home/node/.bottle/prompt.md";
    MCP_CONFIG_PATH = "/home/node/.bottle/mcp.json";
    SKILLS_DIR = "/home/node/.claude/skills";
    PLACEHOLDER = "egress-placeholder";
    claude = {
      defaultCommand: ["claude"],
      command: (base, { hasPrompt, supervise }) => [
        ...base,
        ...hasPrompt ? ["--append-system-prompt-file", PROMPT_PATH] : [],
        ...supervise ? ["--mcp-config", MCP_CONFIG_PATH] : []
      ],
      env: (roles) => ({
        ...roles.has("claude_code_oauth") ? { CLAUDE_CODE_OAUTH_TOKEN: PLACEHOLDER } : {},
        ...roles.has("anthropic_api_key") ? { ANTHROPIC_API_KEY: PLACEHOLDER } : {},
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
        DISABLE_ERROR_REPORTING: "1",
        DISABLE_AUTOUPDATER: "1",
        NODE_EXTRA_CA_CERTS: SYSTEM_CA_BUNDLE,
        SSL_CERT_FILE: SYSTEM_CA_BUNDLE,
        REQUESTS_CA_BUNDLE: SYSTEM_CA_BUNDLE
      }),
      skillsDir: SKILLS_DIR
    };
  }
});

// src/schema/Bundle.ts
var EGRESS_PORT, GIT_GATE_PORT, SUPERVISE_PORT, SUBNET_POOL, SUBNET_POOL_SIZE, subnetFor, PROXY_VARIABLES, proxyEnv;
var init_Bundle = __esm({
  "src/schema/Bundle.ts"() {
    "use strict";
    EGRESS_PORT = 3128;
    GIT_GATE_PORT = 9418;
    SUPERVISE_PORT = 8765;
    SUBNET_POOL = "subnet";
    SUBNET_POOL_SIZE = 256;
    subnetFor = (index) => ({
      subnet: `10.213.${index}.0/24`,
      /** Dynamic addresses (the agent) come from the upper half; the bundle's fixed .2 is outside it. */
      ipRange: `10.213.${index}.128/25`,
      bundleIp: `10.213.${index}.2`
    });
    PROXY_VARIABLES = ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"];
    proxyEnv = (bundleIp) => {
      const proxy = `http://${bundleIp}:${EGRESS_PORT}`;
      return { HTTPS_PROXY: proxy, HTTP_PROXY: proxy, https_proxy: proxy, http_proxy: proxy };
    };
  }
});

// src/schema/BundleProtocol.ts
import * as path3 from "node:path";
var BUNDLE_STATE_ROOT, BUNDLE_LOG_PREFIX, READY_LINE, UNHEALTHY_LINE, DAEMONS, DAEMON_NAMES, DAEMON_TABLE, isBuilt, notBuiltDaemons, bundleDirOf, hostDirOf, bundleRunSpec;
var init_BundleProtocol = __esm({
  "src/schema/BundleProtocol.ts"() {
    "use strict";
    init_Bundle();
    BUNDLE_STATE_ROOT = "/run/bottle";
    BUNDLE_LOG_PREFIX = "bottle-bundle: ";
    READY_LINE = "bottle-bundle: ready";
    UNHEALTHY_LINE = "bottle-bundle: unhealthy";
    DAEMONS = {
      egress: {
        name: "egress",
        port: EGRESS_PORT,
        stateSubdir: "egress",
        envPrefix: "BOTTLE_EGRESS_",
        // routes.yaml, ca.pem, ca-key.pem (0600), audit.log; extra-ca.pem when the host has extra upstream CAs.
        env: ({ dir, port, has }) => ({
          BOTTLE_EGRESS_DIR: dir,
          BOTTLE_EGRESS_LISTEN: `0.0.0.0:${port}`,
          ...has("extra-ca.pem") ? { BOTTLE_EGRESS_EXTRA_CA: `${dir}/extra-ca.pem` } : {}
        }),
        readiness: "ready-fd",
        build: { source: "bundle/egress/main.ts", entry: "egress-daemon" }
      },
      "git-gate": {
        name: "git-gate",
        port: GIT_GATE_PORT,
        stateSubdir: "git-gate",
        envPrefix: "BOTTLE_GIT_GATE_",
        // keys/<upstream>: the deploy keys' private halves (0600), written by the launcher.
        env: ({ dir, port }) => ({ BOTTLE_GIT_GATE_DIR: dir, BOTTLE_GIT_GATE_LISTEN: `0.0.0.0:${port}` }),
        readiness: "ready-fd"
      },
      supervise: {
        name: "supervise",
        port: SUPERVISE_PORT,
        stateSubdir: "supervise",
        envPrefix: "BOTTLE_SUPERVISE_",
        env: ({ dir, port }) => ({ BOTTLE_SUPERVISE_DIR: dir, BOTTLE_SUPERVISE_LISTEN: `0.0.0.0:${port}` }),
        readiness: "ready-fd"
      }
    };
    DAEMON_NAMES = Object.keys(DAEMONS);
    DAEMON_TABLE = Object.values(DAEMONS);
    isBuilt = (row) => row.build !== void 0;
    notBuiltDaemons = (names, table = DAEMON_TABLE) => names.filter((n) => !table.some((r) => r.name === n && isBuilt(r)));
    bundleDirOf = (row) => path3.posix.join(BUNDLE_STATE_ROOT, row.stateSubdir);
    hostDirOf = (bottleDir, row) => path3.join(bottleDir, row.stateSubdir);
    bundleRunSpec = (plan, bottleDir, has = () => false, table = DAEMON_TABLE) => {
      const rows = plan.daemons.flatMap((name) => table.filter((r) => r.name === name));
      return {
        env: Object.assign(
          { BOTTLE_SLUG: plan.slug, BOTTLE_DAEMONS: plan.daemons.join(",") },
          ...rows.map((r) => r.env({ dir: bundleDirOf(r), port: r.port, has: (file) => has(r.stateSubdir, file) }))
        ),
        mounts: rows.map((r) => ({ source: hostDirOf(bottleDir, r), target: bundleDirOf(r), readonly: false }))
      };
    };
  }
});

// src/services/Backend.ts
import { Context as Context3, Schema as Schema5 } from "effect";
var BackendUnavailable, BackendNotFound, BackendFailed, BackendNotBuilt, BackendAddressTaken, BackendError, Backend;
var init_Backend = __esm({
  "src/services/Backend.ts"() {
    "use strict";
    BackendUnavailable = class extends Schema5.TaggedClass()("Unavailable", { message: Schema5.String }) {
    };
    BackendNotFound = class extends Schema5.TaggedClass()("NotFound", { what: Schema5.String }) {
    };
    BackendFailed = class extends Schema5.TaggedClass()("Failed", { message: Schema5.String }) {
    };
    BackendNotBuilt = class extends Schema5.TaggedClass()("BackendNotBuilt", { backend: Schema5.String }) {
    };
    BackendAddressTaken = class extends Schema5.TaggedClass()("AddressTaken", { subnet: Schema5.String, message: Schema5.String }) {
    };
    BackendError = class extends Schema5.TaggedError()("BackendError", {
      backend: Schema5.String,
      reason: Schema5.Union([BackendUnavailable, BackendNotFound, BackendFailed, BackendNotBuilt, BackendAddressTaken])
    }) {
      get message() {
        const r = this.reason;
        switch (r._tag) {
          case "Unavailable":
          case "Failed":
          case "AddressTaken":
            return r.message;
          case "NotFound":
            return `${this.backend}: ${r.what} not found`;
          case "BackendNotBuilt":
            return `the ${r.backend} backend is not built yet in this version of bot-bottle; use --backend docker`;
        }
      }
    };
    Backend = class extends Context3.Service()("bot-bottle/Backend") {
    };
  }
});

// src/services/Progress.ts
import { Context as Context4, Effect as Effect6 } from "effect";
var Progress, reportStep;
var init_Progress = __esm({
  "src/services/Progress.ts"() {
    "use strict";
    Progress = Context4.Reference("bot-bottle/Progress", {
      defaultValue: () => ({ report: () => Effect6.void })
    });
    reportStep = (step) => Effect6.gen(function* () {
      yield* (yield* Progress).report({ _tag: "Step", step });
    });
  }
});

// src/programs/canonicalPath.ts
import * as fs3 from "node:fs";
import * as path4 from "node:path";
var canonicalPath;
var init_canonicalPath = __esm({
  "src/programs/canonicalPath.ts"() {
    "use strict";
    canonicalPath = (p) => {
      const abs = path4.resolve(p);
      const rest = [];
      let dir = abs;
      for (; ; ) {
        try {
          return path4.join(fs3.realpathSync(dir), ...rest);
        } catch {
          const parent = path4.dirname(dir);
          if (parent === dir) return abs;
          rest.unshift(path4.basename(dir));
          dir = parent;
        }
      }
    };
  }
});

// src/programs/bottleNames.ts
import { createHash as createHash2 } from "node:crypto";
var stateRootId, bottleNames, namesIn;
var init_bottleNames = __esm({
  "src/programs/bottleNames.ts"() {
    "use strict";
    init_Docker();
    init_canonicalPath();
    stateRootId = (root) => createHash2("sha256").update(canonicalPath(root)).digest("hex").slice(0, 8);
    bottleNames = (root, slug) => namesIn(stateRootId(root), slug);
    namesIn = (rootId, slug) => {
      const base = `bottle-${slug}-${rootId}`;
      return {
        rootId,
        base,
        agent: `${base}-agent`,
        bundle: `${base}-bundle`,
        internalNetwork: `${base}-int`,
        egressNetwork: `${base}-ext`,
        labels: (role) => ({ [LABEL_SLUG]: slug, [LABEL_ROOT]: rootId, [LABEL_ROLE]: role })
      };
    };
  }
});

// src/services/ProcessRunner.ts
import { Context as Context5, Effect as Effect7, Schema as Schema6 } from "effect";
var CommandFailed, SpawnFailed, DecodeFailed, ProcessError, ProcessRunner, runJson;
var init_ProcessRunner = __esm({
  "src/services/ProcessRunner.ts"() {
    "use strict";
    CommandFailed = class extends Schema6.TaggedClass()("CommandFailed", {
      argv: Schema6.Array(Schema6.String),
      exitCode: Schema6.Number,
      stderr: Schema6.String
    }) {
    };
    SpawnFailed = class extends Schema6.TaggedClass()("SpawnFailed", {
      argv: Schema6.Array(Schema6.String),
      message: Schema6.String
    }) {
    };
    DecodeFailed = class extends Schema6.TaggedClass()("DecodeFailed", {
      argv: Schema6.Array(Schema6.String),
      message: Schema6.String
    }) {
    };
    ProcessError = class extends Schema6.TaggedError()("ProcessError", {
      reason: Schema6.Union([CommandFailed, SpawnFailed, DecodeFailed])
    }) {
      get message() {
        const r = this.reason;
        const cmd = r.argv.join(" ");
        switch (r._tag) {
          case "CommandFailed":
            return `\`${cmd}\` exited with code ${r.exitCode}${r.stderr.trim() ? `: ${r.stderr.trim().split("\n").slice(-5).join("\n")}` : ""}`;
          case "SpawnFailed":
            return `could not run \`${cmd}\`: ${r.message}`;
          case "DecodeFailed":
            return `\`${cmd}\` printed output that could not be decoded: ${r.message}`;
        }
      }
    };
    ProcessRunner = class extends Context5.Service()("bot-bottle/ProcessRunner") {
    };
    runJson = (schema) => {
      const decode = Schema6.decodeUnknownEffect(Schema6.fromJsonString(schema));
      return Effect7.fnUntraced(function* (argv, options) {
        const runner = yield* ProcessRunner;
        const { stdout } = yield* runner.run(argv, options);
        return yield* decode(stdout).pipe(
          Effect7.mapError((e) => new ProcessError({ reason: new DecodeFailed({ argv: [...argv], message: e.message }) }))
        );
      });
    };
  }
});

// src/layers/ProcessRunner.ts
import * as os2 from "node:os";
import { Effect as Effect8, Layer, Option as Option2, Stream } from "effect";
import { ChildProcess, ChildProcessSpawner } from "effect/process";
import * as NodeChildProcessSpawner from "@effect/platform-node/NodeChildProcessSpawner";
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem";
import * as NodePath from "@effect/platform-node/NodePath";
var FORCE_KILL_AFTER, spawnFailed, signalExit, exitCodeOf, lines, collect, command, placement, make, layer4;
var init_ProcessRunner2 = __esm({
  "src/layers/ProcessRunner.ts"() {
    "use strict";
    init_ProcessRunner();
    FORCE_KILL_AFTER = "5 seconds";
    spawnFailed = (argv) => (e) => new ProcessError({
      reason: new SpawnFailed({
        argv: [...argv],
        // Node's own message ("spawn docker ENOENT", "ENOENT: no such file or directory, access
        // '/x'") says more than the wrapper's.
        message: e.cause instanceof Error ? e.cause.message : e.message
      })
    });
    signalExit = /receipt of signal: '(\w+)'/;
    exitCodeOf = (handle) => handle.exitCode.pipe(
      Effect8.map(Number),
      Effect8.catch((e) => {
        const signal = (e.cause instanceof Error ? e.cause.message : e.message).match(signalExit)?.[1];
        const n = signal === void 0 ? void 0 : os2.constants.signals[signal];
        return n === void 0 ? Effect8.fail(e) : Effect8.succeed(128 + n);
      })
    );
    lines = (bytes) => bytes.pipe(Stream.decodeText(), Stream.splitLines, Stream.filter((l) => l.length > 0));
    collect = (bytes, onLine) => Effect8.suspend(() => {
      const chunks = [];
      const kept = Stream.tap(bytes, (c) => Effect8.sync(() => chunks.push(c)));
      return (onLine ? Stream.runForEach(lines(kept), (l) => Effect8.sync(() => onLine(l))) : Stream.runDrain(kept)).pipe(
        Effect8.map(() => Buffer.concat(chunks).toString("utf8"))
      );
    });
    command = (argv, options) => {
      const [cmd, ...args] = argv;
      return ChildProcess.make(cmd, args, { ...options, detached: false, forceKillAfter: FORCE_KILL_AFTER });
    };
    placement = (options) => ({
      ...options?.cwd !== void 0 ? { cwd: options.cwd } : {},
      ...options?.env !== void 0 ? { env: options.env, extendEnv: true } : {}
    });
    make = Effect8.gen(function* () {
      const spawner = yield* ChildProcessSpawner.ChildProcessSpawner;
      const exec = (argv, options) => Effect8.scoped(Effect8.gen(function* () {
        const input = options?.stdin === void 0 ? Stream.empty : Stream.succeed(typeof options.stdin === "string" ? Buffer.from(options.stdin, "utf8") : options.stdin);
        const handle = yield* spawner.spawn(command(argv, { ...placement(options), stdin: input }));
        const [stdout, stderr, exitCode] = yield* Effect8.all([
          collect(handle.stdout, options?.onStdoutLine),
          collect(handle.stderr, options?.onStderrLine),
          exitCodeOf(handle)
        ], { concurrency: "unbounded" });
        return { stdout, stderr, exitCode };
      })).pipe(Effect8.mapError(spawnFailed(argv)));
      const watch2 = (argv, match) => Effect8.scoped(Effect8.gen(function* () {
        const handle = yield* spawner.spawn(command(argv, { stdin: "ignore" }));
        const line = yield* Stream.merge(lines(handle.stdout), lines(handle.stderr)).pipe(Stream.filter(match), Stream.runHead);
        return Option2.getOrUndefined(line);
      })).pipe(Effect8.mapError(spawnFailed(argv)));
      const interactive = (argv, options) => Effect8.scoped(Effect8.gen(function* () {
        const handle = yield* spawner.spawn(command(argv, { ...placement(options), stdin: "inherit", stdout: "inherit", stderr: "inherit" }));
        return yield* exitCodeOf(handle);
      })).pipe(Effect8.mapError(spawnFailed(argv)));
      return ProcessRunner.of({
        watch: watch2,
        exec,
        run: (argv, options) => exec(argv, options).pipe(
          Effect8.flatMap(
            (r) => r.exitCode === 0 ? Effect8.succeed(r) : Effect8.fail(new ProcessError({ reason: new CommandFailed({ argv: [...argv], exitCode: r.exitCode, stderr: r.stderr }) }))
          )
        ),
        interactive
      });
    });
    layer4 = Layer.effect(ProcessRunner, make).pipe(
      Layer.provide(NodeChildProcessSpawner.layer),
      Layer.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer))
    );
  }
});

// src/layers/Docker.ts
import { Effect as Effect9, Layer as Layer2, Redacted as Redacted2, Schema as Schema7 } from "effect";
var DOCKER, toDockerError, labelArgs, LsLine, decodeLsLine, NetworkInspect, SUBNET_OVERLAP, Info, ContainerState, make2, layer5;
var init_Docker2 = __esm({
  "src/layers/Docker.ts"() {
    "use strict";
    init_Docker();
    init_ProcessRunner();
    init_ProcessRunner2();
    DOCKER = process.env["BOTTLE_DOCKER"] ?? "docker";
    toDockerError = (e) => {
      const r = e.reason;
      if (r._tag === "CommandFailed") {
        if (/Cannot connect to the Docker daemon|Is the docker daemon running|error during connect/i.test(r.stderr)) {
          return new DockerError({ reason: new DockerUnavailable({ message: r.stderr.trim() }) });
        }
        if (/No such (container|network|image|object|volume)\b|\bnetwork \S+ not found\b/i.test(r.stderr)) {
          return new DockerError({ reason: new DockerNotFound({ what: r.stderr.trim().split("\n").pop() ?? "object" }) });
        }
        return new DockerError({ reason: new DockerCommandFailed({ argv: r.argv, exitCode: r.exitCode, stderr: r.stderr }) });
      }
      if (r._tag === "SpawnFailed") return new DockerError({ reason: new DockerUnavailable({ message: `cannot run docker: ${r.message}` }) });
      return new DockerError({ reason: new DockerDecodeFailed({ message: r.message }) });
    };
    labelArgs = (labels) => Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
    LsLine = Schema7.Struct({
      ID: Schema7.optionalKey(Schema7.String),
      Names: Schema7.optionalKey(Schema7.String),
      Name: Schema7.optionalKey(Schema7.String),
      Labels: Schema7.String,
      State: Schema7.optionalKey(Schema7.String),
      Status: Schema7.optionalKey(Schema7.String)
    });
    decodeLsLine = Schema7.decodeUnknownSync(Schema7.fromJsonString(LsLine));
    NetworkInspect = Schema7.Array(Schema7.Struct({
      Name: Schema7.String,
      IPAM: Schema7.optionalKey(Schema7.NullOr(Schema7.Struct({
        Config: Schema7.optionalKey(Schema7.NullOr(Schema7.Array(Schema7.Struct({ Subnet: Schema7.optionalKey(Schema7.String) }))))
      })))
    }));
    SUBNET_OVERLAP = /Pool overlaps with other one on this address space|networks have overlapping IPv4|is already used on the host or by another config/i;
    Info = Schema7.Struct({
      OperatingSystem: Schema7.optionalKey(Schema7.String),
      ServerVersion: Schema7.optionalKey(Schema7.String),
      ServerErrors: Schema7.optionalKey(Schema7.NullOr(Schema7.Array(Schema7.String)))
    });
    ContainerState = Schema7.Struct({
      Running: Schema7.Boolean,
      Status: Schema7.String,
      Health: Schema7.optionalKey(Schema7.NullOr(Schema7.Struct({ Status: Schema7.String })))
    });
    make2 = Effect9.gen(function* () {
      const runner = yield* ProcessRunner;
      const docker = (args, options) => runner.run([DOCKER, ...args], options).pipe(Effect9.mapError(toDockerError));
      const dockerExec = (args, options) => runner.exec([DOCKER, ...args], options).pipe(Effect9.mapError(toDockerError));
      const dockerJson = (schema, args) => runJson(schema)([DOCKER, ...args]).pipe(Effect9.provideService(ProcessRunner, runner), Effect9.mapError(toDockerError));
      const ignoreNotFound = (eff) => eff.pipe(Effect9.catchIf((e) => e.reason._tag === "NotFound", () => Effect9.void), Effect9.asVoid);
      const createNetwork = Effect9.fn("Docker.createNetwork")(function* (spec) {
        const args = ["network", "create", "--driver", "bridge", ...spec.internal ? ["--internal", "--opt", "com.docker.network.bridge.inhibit_ipv4=true"] : []];
        if (spec.subnet) args.push("--subnet", spec.subnet);
        if (spec.ipRange) args.push("--ip-range", spec.ipRange);
        const { stdout } = yield* docker([...args, ...labelArgs(spec.labels), spec.name]).pipe(
          Effect9.mapError(
            (e) => spec.subnet && e.reason._tag === "CommandFailed" && SUBNET_OVERLAP.test(e.reason.stderr) ? new DockerError({ reason: new DockerSubnetOverlap({ network: spec.name, subnet: spec.subnet, stderr: e.reason.stderr.trim() }) }) : e
          )
        );
        return { id: stdout.trim(), name: spec.name };
      });
      const removeNetwork = Effect9.fn("Docker.removeNetwork")(function* (nameOrId) {
        yield* ignoreNotFound(docker(["network", "rm", nameOrId]));
      });
      const removeContainer = Effect9.fn("Docker.removeContainer")(function* (nameOrId) {
        yield* ignoreNotFound(docker(["rm", "--force", "--volumes", nameOrId]));
      });
      const createArgs = (spec) => {
        const [first] = spec.networks;
        const args = ["create", "--name", spec.name, ...labelArgs(spec.labels)];
        if (first) {
          args.push("--network", first.name);
          if (first.ip) args.push("--ip", first.ip);
          for (const a of first.aliases ?? []) args.push("--network-alias", a);
        } else {
          args.push("--network", "none");
        }
        for (const [k, v] of Object.entries(spec.env)) args.push("--env", `${k}=${v}`);
        for (const k of Object.keys(spec.secretEnv ?? {})) args.push("--env", k);
        for (const m of spec.mounts ?? []) args.push("--mount", `type=bind,source=${m.source},target=${m.target}${m.readonly ? ",readonly" : ""}`);
        if (spec.workdir) args.push("--workdir", spec.workdir);
        if (spec.user) args.push("--user", spec.user);
        if (spec.hostname) args.push("--hostname", spec.hostname);
        if (spec.entrypoint !== void 0) args.push("--entrypoint", spec.entrypoint);
        if (spec.tty) args.push("--tty", "--interactive");
        if (spec.cpus) args.push("--cpus", String(spec.cpus));
        if (spec.memory) args.push("--memory", spec.memory);
        args.push(...spec.extraArgs ?? [], spec.image, ...spec.command ?? []);
        return args;
      };
      const connectNetwork = (container, net) => docker([
        "network",
        "connect",
        ...net.ip ? ["--ip", net.ip] : [],
        ...(net.aliases ?? []).flatMap((a) => ["--alias", a]),
        net.name,
        container
      ]).pipe(Effect9.asVoid);
      const runContainer = Effect9.fn("Docker.runContainer")(function* (spec) {
        const secretEnv = Object.fromEntries(Object.entries(spec.secretEnv ?? {}).map(([k, v]) => [k, Redacted2.value(v)]));
        const extra = spec.networks.slice(1);
        const args = createArgs(spec);
        const { stdout } = yield* docker(extra.length === 0 ? ["run", "--detach", ...args.slice(1)] : args, { env: secretEnv });
        const id = stdout.trim();
        if (extra.length === 0) return { id, name: spec.name };
        yield* Effect9.forEach(extra, (net) => connectNetwork(id, net), { discard: true }).pipe(
          Effect9.andThen(docker(["start", id])),
          Effect9.onError(() => removeContainer(id).pipe(Effect9.ignore))
        );
        return { id, name: spec.name };
      });
      const listKind = (kind, slug) => {
        const filter = ["--filter", `label=${LABEL_SLUG}${slug ? `=${slug}` : ""}`];
        const args = kind === "container" ? ["ps", "--all", "--no-trunc", ...filter, "--format", "{{json .}}"] : [kind, "ls", ...filter, "--format", "{{json .}}"];
        return docker(args).pipe(
          Effect9.flatMap(
            ({ stdout }) => Effect9.try({
              try: () => stdout.split("\n").filter((l) => l.trim()).map((l) => {
                const row = decodeLsLine(l);
                const labels = row.Labels.split(",");
                const label = (key) => labels.find((kv) => kv.startsWith(`${key}=`))?.slice(key.length + 1);
                const root = label(LABEL_ROOT);
                const name = row.Names ?? row.Name ?? row.ID;
                if (name === void 0) throw new Error(`a ${kind} with neither a name nor an id: ${l}`);
                const health = row.Status?.match(/\((healthy|unhealthy|health: starting)\)/)?.[1];
                return {
                  kind,
                  id: row.ID || name,
                  name,
                  slug: label(LABEL_SLUG) ?? "",
                  ...root !== void 0 ? { root } : {},
                  ...row.State ? { state: row.State } : {},
                  ...health ? { health: health === "health: starting" ? "starting" : health } : {}
                };
              }),
              catch: (e) => new DockerError({ reason: new DockerDecodeFailed({ message: String(e) }) })
            })
          )
        );
      };
      return Docker.of({
        info: dockerJson(Info, ["info", "--format", "{{json .}}"]).pipe(
          Effect9.flatMap(
            (j) => j.ServerVersion ? Effect9.succeed({ operatingSystem: j.OperatingSystem ?? "unknown", serverVersion: j.ServerVersion }) : Effect9.fail(new DockerError({ reason: new DockerUnavailable({ message: j.ServerErrors?.join("; ") || "no server answered" }) }))
          )
        ),
        imageExists: (ref) => dockerExec(["image", "inspect", "--format", "{{.Id}}", ref]).pipe(Effect9.map((r) => r.exitCode === 0)),
        imageId: (ref) => docker(["image", "inspect", "--format", "{{.Id}}", ref]).pipe(Effect9.map((r) => r.stdout.trim())),
        pullImage: (ref) => docker(["pull", "--quiet", ref]).pipe(Effect9.asVoid),
        build: Effect9.fn("Docker.build")(function* (spec) {
          const args = ["build", "--force-rm", "--tag", spec.tag, ...labelArgs(spec.labels ?? {})];
          if (spec.dockerfile) args.push("--file", spec.dockerfile);
          for (const [k, v] of Object.entries(spec.buildArgs ?? {})) args.push("--build-arg", `${k}=${v}`);
          args.push(spec.context);
          const progress = spec.onProgress;
          yield* docker(args, {
            env: { DOCKER_BUILDKIT: process.env["DOCKER_BUILDKIT"] ?? "0" },
            ...progress ? { onStdoutLine: progress, onStderrLine: progress } : {}
          });
        }),
        imageRefs: (repo) => docker(["image", "ls", repo, "--format", "{{.Repository}}:{{.Tag}}"]).pipe(
          Effect9.map(({ stdout }) => stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.endsWith(":<none>")))
        ),
        removeImage: (ref) => ignoreNotFound(docker(["image", "rm", ref])),
        saveImage: (ref, tarPath) => docker(["save", "--output", tarPath, ref]).pipe(Effect9.asVoid),
        createNetwork,
        removeNetwork,
        networkSubnets: Effect9.gen(function* () {
          for (let attempt = 0; ; attempt++) {
            const { stdout } = yield* docker(["network", "ls", "--no-trunc", "--quiet"]);
            const ids = stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "");
            if (ids.length === 0) return [];
            const inspected = yield* dockerJson(NetworkInspect, ["network", "inspect", ...ids]).pipe(
              Effect9.map((nets) => nets.map((n) => ({ name: n.Name, subnets: (n.IPAM?.Config ?? []).flatMap((c) => c.Subnet ? [c.Subnet] : []) }))),
              Effect9.catchIf((e) => e.reason._tag === "NotFound" && attempt < 5, () => Effect9.succeed(void 0))
            );
            if (inspected) return inspected;
          }
        }).pipe(Effect9.withSpan("Docker.networkSubnets")),
        network: (spec) => Effect9.acquireRelease(createNetwork(spec), (n) => removeNetwork(n.name).pipe(Effect9.catchCause((c) => Effect9.logError(`could not remove network ${n.name}`, c)))),
        runContainer,
        removeContainer,
        connectNetwork,
        container: (spec) => Effect9.acquireRelease(runContainer(spec), (c) => removeContainer(c.name).pipe(Effect9.catchCause((cause) => Effect9.logError(`could not remove container ${c.name}`, cause)))),
        startContainer: (n) => docker(["start", n]).pipe(Effect9.asVoid),
        stopContainer: (n) => ignoreNotFound(docker(["stop", "--time", "5", n])),
        containerState: (n) => dockerJson(ContainerState, ["inspect", "--format", "{{json .State}}", n]).pipe(
          Effect9.map((s) => ({ running: s.Running, status: s.Status, ...s.Health ? { health: s.Health.Status } : {} }))
        ),
        exec: (container, argv, options) => {
          const args = ["exec", ...options?.stdin !== void 0 ? ["--interactive"] : []];
          for (const [k, v] of Object.entries(options?.env ?? {})) args.push("--env", `${k}=${v}`);
          if (options?.user) args.push("--user", options.user);
          if (options?.workdir) args.push("--workdir", options.workdir);
          return dockerExec([...args, container, ...argv], options?.stdin !== void 0 ? { stdin: options.stdin } : void 0);
        },
        execInteractive: (container, argv, options) => {
          const args = ["exec", "--interactive", ...options?.tty ? ["--tty"] : []];
          for (const [k, v] of Object.entries(options?.env ?? {})) args.push("--env", `${k}=${v}`);
          if (options?.user) args.push("--user", options.user);
          if (options?.workdir) args.push("--workdir", options.workdir);
          return runner.interactive([DOCKER, ...args, container, ...argv]).pipe(Effect9.mapError(toDockerError));
        },
        copyTo: (container, hostPath, containerPath) => docker(["cp", hostPath, `${container}:${containerPath}`]).pipe(Effect9.asVoid),
        waitForLogLine: (container, match) => runner.watch([DOCKER, "logs", "--follow", container], match).pipe(Effect9.mapError(toDockerError)),
        events: (rootId, onEvent) => runner.watch([DOCKER, "events", "--filter", "type=container", "--filter", `label=${LABEL_ROOT}=${rootId}`, "--format", "{{.Action}}"], () => {
          onEvent();
          return false;
        }).pipe(Effect9.asVoid, Effect9.mapError(toDockerError)),
        logs: (container, options) => runner.interactive([DOCKER, "logs", ...options?.follow ? ["--follow"] : [], ...options?.tail !== void 0 ? ["--tail", String(options.tail)] : [], container]).pipe(
          Effect9.mapError(toDockerError),
          Effect9.asVoid
        ),
        listLabelled: (slug) => Effect9.all([listKind("container", slug), listKind("network", slug), listKind("volume", slug)]).pipe(Effect9.map((xs) => xs.flat())),
        removeVolume: (name) => ignoreNotFound(docker(["volume", "rm", "--force", name]))
      });
    });
    layer5 = Layer2.effect(Docker, make2).pipe(Layer2.provide(layer4));
  }
});

// src/layers/StateStore.ts
import * as fs4 from "node:fs";
import * as os3 from "node:os";
import * as path5 from "node:path";
import { Effect as Effect10, Layer as Layer3, Option as Option3, Schema as Schema8 } from "effect";
var stateRoot, io, make3, layer6;
var init_StateStore2 = __esm({
  "src/layers/StateStore.ts"() {
    "use strict";
    init_StateStore();
    stateRoot = (env = process.env) => env["BOTTLE_STATE_DIR"] || (env["XDG_STATE_HOME"] ? path5.join(env["XDG_STATE_HOME"], "bot-bottle") : path5.join(os3.homedir(), ".local", "state", "bot-bottle"));
    io = (p) => (e) => new StateError({ reason: new StateIo({ path: p, message: e.message }) });
    make3 = (root) => {
      const bottlesDir = path5.join(root, "bottles");
      const leasesDir = path5.join(root, "leases");
      const bottleDir = (slug) => path5.join(bottlesDir, slug);
      const writeAtomic2 = (file, content, mode) => Effect10.try({
        try: () => {
          fs4.mkdirSync(path5.dirname(file), { recursive: true, mode: 448 });
          const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
          fs4.writeFileSync(tmp, content, { mode });
          fs4.renameSync(tmp, file);
          return file;
        },
        catch: io(file)
      });
      const readFile3 = (slug, rel) => {
        const file = path5.join(bottleDir(slug), rel);
        return Effect10.try({
          try: () => fs4.readFileSync(file, "utf8"),
          catch: (e) => e.code === "ENOENT" && !fs4.existsSync(bottleDir(slug)) ? new StateError({ reason: new StateNotFound({ slug }) }) : io(file)(e)
        });
      };
      const readJsonFile = (file, schema) => Effect10.try({ try: () => fs4.existsSync(file) ? fs4.readFileSync(file, "utf8") : void 0, catch: io(file) }).pipe(
        Effect10.flatMap(
          (text) => text === void 0 ? Effect10.succeed(Option3.none()) : Schema8.decodeUnknownEffect(Schema8.fromJsonString(schema))(text).pipe(
            Effect10.map(Option3.some),
            Effect10.mapError((e) => new StateError({ reason: new StateCorrupt({ path: file, message: e.message }) }))
          )
        )
      );
      const readIfAny = (file) => {
        try {
          return fs4.readFileSync(file, "utf8").trim();
        } catch (e) {
          if (e.code === "ENOENT") return void 0;
          throw e;
        }
      };
      const poolDir = (pool) => path5.join(leasesDir, pool);
      const readLeases = (pool) => {
        const dir = poolDir(pool);
        if (!fs4.existsSync(dir)) return [];
        return fs4.readdirSync(dir).filter((f) => /^\d+$/.test(f)).flatMap((f) => {
          const slug = readIfAny(path5.join(dir, f));
          return slug === void 0 ? [] : [{ pool, index: Number(f), slug }];
        });
      };
      const allLeases = Effect10.try({
        try: () => (fs4.existsSync(leasesDir) ? fs4.readdirSync(leasesDir) : []).flatMap(readLeases),
        catch: io(leasesDir)
      });
      const indexFile = (pool, index) => path5.join(poolDir(pool), String(index));
      const ownerFile = (pool, slug) => path5.join(poolDir(pool), "by-slug", slug);
      const createExclusive = (file, content) => {
        const tmp = path5.join(path5.dirname(file), `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
        fs4.writeFileSync(tmp, content, { flag: "wx", mode: 384 });
        try {
          fs4.linkSync(tmp, file);
          return true;
        } catch (e) {
          if (e.code === "EEXIST") return false;
          throw e;
        } finally {
          fs4.rmSync(tmp, { force: true });
        }
      };
      const removeIfHolds = (file, content) => {
        if (readIfAny(file) === content) fs4.rmSync(file, { force: true });
      };
      const releaseOne = (pool, index, slug) => {
        removeIfHolds(ownerFile(pool, slug), String(index));
        removeIfHolds(indexFile(pool, index), slug);
      };
      const takeLeaseSync = (pool, size, slug, avoid) => {
        fs4.mkdirSync(path5.dirname(ownerFile(pool, slug)), { recursive: true, mode: 448 });
        let mine;
        for (let round = 0; round < 1e3; round++) {
          const owned = readIfAny(ownerFile(pool, slug));
          if (owned !== void 0) {
            const index2 = /^\d+$/.test(owned) ? Number(owned) : -1;
            if (index2 >= 0 && readIfAny(indexFile(pool, index2)) === slug) {
              if (!avoid.has(index2)) return { lease: { pool, index: index2, slug }, created: index2 === mine };
              releaseOne(pool, index2, slug);
            } else {
              removeIfHolds(ownerFile(pool, slug), owned);
            }
            continue;
          }
          const held = readLeases(pool).filter((l) => l.slug === slug && !avoid.has(l.index)).map((l) => l.index).sort((a, b) => a - b)[0];
          let index = held;
          if (index === void 0) {
            for (let i = 0; i < size && index === void 0; i++) {
              if (!avoid.has(i) && createExclusive(indexFile(pool, i), slug)) index = i;
            }
            if (index === void 0) return void 0;
            mine = index;
          }
          if (createExclusive(ownerFile(pool, slug), String(index))) return { lease: { pool, index, slug }, created: index === mine };
          if (index === mine && readIfAny(ownerFile(pool, slug)) !== String(index)) {
            removeIfHolds(indexFile(pool, index), slug);
            mine = void 0;
          }
        }
        throw new Error(`the lease of ${slug} in ${poolDir(pool)} keeps changing under us`);
      };
      const takeLeaseCreated = (pool, size, slug, options) => Effect10.try({ try: () => takeLeaseSync(pool, size, slug, options?.avoid ?? /* @__PURE__ */ new Set()), catch: io(poolDir(pool)) }).pipe(
        Effect10.flatMap((l) => l ? Effect10.succeed(l) : Effect10.fail(new StateError({ reason: new StateExhausted({ pool }) })))
      );
      const takeLease = (pool, size, slug, options) => takeLeaseCreated(pool, size, slug, options).pipe(Effect10.map((l) => l.lease));
      const releaseLeases = (slug) => Effect10.try({
        try: () => {
          for (const pool of fs4.existsSync(leasesDir) ? fs4.readdirSync(leasesDir) : []) {
            fs4.rmSync(ownerFile(pool, slug), { force: true });
            for (const l of readLeases(pool)) if (l.slug === slug) fs4.rmSync(indexFile(pool, l.index), { force: true });
          }
        },
        catch: io(leasesDir)
      });
      return StateStore.of({
        root,
        bottleDir,
        // Kept when the scope succeeds (the state outlives a session: logs, `resume`); removed
        // when it fails, so a launch that did not happen leaves nothing behind.
        createBottleDir: (slug) => Effect10.acquireRelease(
          Effect10.try({
            try: () => {
              fs4.mkdirSync(bottlesDir, { recursive: true, mode: 448 });
              fs4.mkdirSync(bottleDir(slug), { mode: 448 });
              return bottleDir(slug);
            },
            catch: (e) => e.code === "EEXIST" ? new StateError({ reason: new StateExists({ slug }) }) : io(bottleDir(slug))(e)
          }),
          (dir, exit) => exit._tag === "Success" ? Effect10.void : Effect10.sync(() => fs4.rmSync(dir, { recursive: true, force: true })).pipe(
            Effect10.catchCause((c) => Effect10.logError(`could not remove ${dir}`, c))
          )
        ),
        writeFile: (slug, rel, content, mode = 384) => writeAtomic2(path5.join(bottleDir(slug), rel), content, mode),
        readFile: readFile3,
        writeJson: (slug, rel, value) => writeAtomic2(path5.join(bottleDir(slug), rel), JSON.stringify(value, null, 2) + "\n", 384),
        readJson: (slug, rel, schema) => readFile3(slug, rel).pipe(
          Effect10.flatMap(
            (text) => Schema8.decodeUnknownEffect(Schema8.fromJsonString(schema))(text).pipe(
              Effect10.mapError((e) => new StateError({ reason: new StateCorrupt({ path: path5.join(bottleDir(slug), rel), message: e.message }) }))
            )
          )
        ),
        readJsonIfAny: (slug, rel, schema) => readJsonFile(path5.join(bottleDir(slug), rel), schema),
        readRootJson: (name, schema) => readJsonFile(path5.join(root, name), schema),
        writeRootJson: (name, value) => writeAtomic2(path5.join(root, name), JSON.stringify(value, null, 2) + "\n", 384),
        exists: (slug) => Effect10.sync(() => fs4.existsSync(bottleDir(slug))),
        list: Effect10.try({
          try: () => fs4.existsSync(bottlesDir) ? fs4.readdirSync(bottlesDir).filter((d) => !d.startsWith(".")).sort() : [],
          catch: io(bottlesDir)
        }),
        removeBottle: (slug) => Effect10.try({ try: () => fs4.rmSync(bottleDir(slug), { recursive: true, force: true }), catch: io(bottleDir(slug)) }),
        peekLease: (pool, size, slug) => Effect10.try({
          try: () => {
            const leases = readLeases(pool);
            const mine = leases.find((l) => l.slug === slug);
            if (mine) return mine.index;
            const taken = new Set(leases.map((l) => l.index));
            for (let i = 0; i < size; i++) if (!taken.has(i)) return i;
            return -1;
          },
          catch: io(poolDir(pool))
        }).pipe(Effect10.flatMap((i) => i >= 0 ? Effect10.succeed(i) : Effect10.fail(new StateError({ reason: new StateExhausted({ pool }) })))),
        takeLease,
        lease: (pool, size, slug, options) => Effect10.acquireRelease(takeLeaseCreated(pool, size, slug, options), ({ lease: l, created }) => created ? Effect10.sync(() => releaseOne(l.pool, l.index, l.slug)).pipe(
          Effect10.catchCause((c) => Effect10.logError(`could not release lease ${l.pool}/${l.index}`, c))
        ) : Effect10.void).pipe(Effect10.map((l) => l.lease)),
        releaseLeases,
        leasesOf: (slug) => allLeases.pipe(Effect10.map((ls) => ls.filter((l) => l.slug === slug))),
        allLeases
      });
    };
    layer6 = Layer3.sync(StateStore, () => make3(stateRoot()));
  }
});

// src/layers/DockerBackend.ts
import * as fs5 from "node:fs";
import * as path6 from "node:path";
import { Effect as Effect11, Fiber, Layer as Layer4 } from "effect";
var toBackendError, failed, dockerRuntime, bundleContainer, AGENT_PIDS_LIMIT, BUNDLE_LIMITS, agentIsolation, userOf, statusOf, removalOrder, inRemovalOrder, make4, layerWith, layer7;
var init_DockerBackend = __esm({
  "src/layers/DockerBackend.ts"() {
    "use strict";
    init_images();
    init_claude();
    init_Bundle();
    init_BundleProtocol();
    init_Backend();
    init_Docker();
    init_Progress();
    init_StateStore();
    init_bottleNames();
    init_Docker2();
    init_StateStore2();
    toBackendError = (e) => new BackendError({
      backend: "docker",
      reason: e.reason._tag === "SubnetOverlap" ? new BackendAddressTaken({ subnet: e.reason.subnet, message: e.message }) : e.reason._tag === "Unavailable" ? new BackendUnavailable({ message: e.message }) : e.reason._tag === "NotFound" ? new BackendNotFound({ what: e.reason.what }) : new BackendFailed({ message: e.message })
    });
    failed = (message) => new BackendError({ backend: "docker", reason: new BackendFailed({ message }) });
    dockerRuntime = (plan) => plan.runtime.backend === "docker" ? Effect11.succeed(plan.runtime) : Effect11.die(new Error(`the docker backend was given a ${plan.runtime.backend} plan`));
    bundleContainer = (names, plan, internalNetwork, spec, run = bundleRunSpec(plan, spec.stateDir, (sub, file) => fs5.existsSync(path6.join(spec.stateDir, sub, file)))) => ({
      name: names.bundle,
      image: spec.image,
      // The egress network is joined once the bundle runs: it is only needed once the agent makes
      // a request, and the bundle then briefly has fewer routes, never more.
      networks: [{ name: internalNetwork, ip: plan.network.bundleIp }],
      // Each daemon's variables, and its own subdir of the state dir mounted (bundle protocol).
      env: run.env,
      secretEnv: spec.secretEnv,
      labels: names.labels("bundle"),
      // The bundle runs as the host user who owns the state dir (0700), so it can read its config
      // and CA key without the dir being opened to anyone else.
      ...process.getuid && process.getgid ? { user: `${process.getuid()}:${process.getgid()}` } : {},
      mounts: run.mounts,
      extraArgs: ["--cap-drop", "ALL", "--security-opt", "no-new-privileges", ...BUNDLE_LIMITS]
    });
    AGENT_PIDS_LIMIT = 4096;
    BUNDLE_LIMITS = ["--pids-limit", "256", "--memory", "512m"];
    agentIsolation = (plan) => [
      "--init",
      // The engine's DNS would forward lookups of outside names for the agent (on engines before
      // 26.0.0 even through the host's namespace, CVE-2024-29018: a DNS exfiltration channel).
      // Pointed at the sidecar, where nothing answers on port 53, they go nowhere; names on the
      // bottle's own network still resolve.
      "--dns",
      plan.network.bundleIp,
      // No IPv6 at all: --internal and inhibit_ipv4 close IPv4 only, and link-local IPv6 could
      // otherwise reach host services listening on ::.
      "--sysctl",
      "net.ipv6.conf.all.disable_ipv6=1",
      "--sysctl",
      "net.ipv6.conf.default.disable_ipv6=1",
      "--cap-drop",
      "ALL",
      "--cap-add",
      "CHOWN",
      "--cap-add",
      "DAC_OVERRIDE",
      "--cap-add",
      "FOWNER",
      "--cap-add",
      "SETUID",
      "--cap-add",
      "SETGID",
      "--security-opt",
      "no-new-privileges",
      "--pids-limit",
      String(AGENT_PIDS_LIMIT)
    ];
    userOf = (user) => user === "root" ? "root" : "node";
    statusOf = (names, slug, resources) => {
      const mine = resources.filter((r) => r.slug === slug && r.kind === "container");
      if (mine.length === 0) return "stopped";
      const running = (name) => mine.some((r) => r.name === name && r.state === "running");
      if (!running(names.agent) || !running(names.bundle)) return "degraded";
      return mine.some((r) => r.name === names.bundle && r.health === "unhealthy") ? "unhealthy" : "running";
    };
    removalOrder = { container: 0, network: 1, volume: 2 };
    inRemovalOrder = (rs) => [...rs].sort((a, b) => removalOrder[a.kind] - removalOrder[b.kind]);
    make4 = Effect11.gen(function* () {
      const docker = yield* Docker;
      const root = (yield* StateStore).root;
      const rootId = stateRootId(root);
      const names = (slug) => namesIn(rootId, slug);
      const ofRoot = (rs) => rs.filter((r) => r.root === rootId);
      const removeResource = (r) => r.kind === "container" ? docker.removeContainer(r.name) : r.kind === "network" ? docker.removeNetwork(r.name) : docker.removeVolume(r.name);
      const waitForBundle = Effect11.fnUntraced(function* (name, timeoutMs) {
        const line = yield* docker.waitForLogLine(name, (l) => l.startsWith(READY_LINE) || l.startsWith(UNHEALTHY_LINE)).pipe(
          Effect11.mapError(toBackendError),
          Effect11.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect11.fail(failed(`the sidecar bundle did not become ready in ${timeoutMs} ms`)) })
        );
        if (line === void 0) return yield* failed(`the sidecar bundle exited; see \`docker logs ${name}\``);
        if (line.startsWith(UNHEALTHY_LINE)) return yield* failed(`the sidecar bundle is ${line.slice(BUNDLE_LOG_PREFIX.length)}`);
      });
      const network = Effect11.fnUntraced(function* (plan) {
        const rt = yield* dockerRuntime(plan);
        yield* docker.network({
          name: rt.internalNetwork,
          internal: true,
          subnet: plan.network.subnet,
          ipRange: subnetFor(plan.network.subnetIndex).ipRange,
          labels: names(plan.slug).labels("internal")
        });
        const egress = yield* Effect11.forkScoped(docker.network({ name: rt.egressNetwork, internal: false, labels: names(plan.slug).labels("egress") }));
        return { complete: Fiber.join(egress).pipe(Effect11.asVoid, Effect11.mapError(toBackendError)) };
      }, Effect11.mapError(toBackendError));
      const bundle = Effect11.fnUntraced(function* (plan, net, spec) {
        const rt = yield* dockerRuntime(plan);
        const container = yield* docker.container(bundleContainer(names(plan.slug), plan, rt.internalNetwork, spec)).pipe(Effect11.mapError(toBackendError));
        yield* reportStep("bundle:ready");
        yield* Effect11.all([
          net.complete.pipe(Effect11.andThen(docker.connectNetwork(container.name, { name: rt.egressNetwork }).pipe(Effect11.mapError(toBackendError)))),
          waitForBundle(container.name, spec.readyTimeoutMs)
        ], { concurrency: 2, discard: true });
      });
      const sandbox = Effect11.fnUntraced(function* (plan, _net, spec) {
        const rt = yield* dockerRuntime(plan);
        const agent = yield* docker.container({
          name: names(plan.slug).agent,
          image: spec.image,
          networks: [{ name: rt.internalNetwork }],
          env: { ...plan.env, HOME: AGENT_HOME },
          labels: names(plan.slug).labels("agent"),
          mounts: [{ source: spec.provisionDir, target: spec.provisionTarget, readonly: true }, ...spec.mounts],
          workdir: plan.workdir,
          user: "root",
          hostname: plan.slug,
          command: ["sleep", "infinity"],
          ...plan.resources.cpus !== void 0 ? { cpus: plan.resources.cpus } : {},
          ...plan.resources.memory !== void 0 ? { memory: plan.resources.memory } : {},
          extraArgs: agentIsolation(plan)
        });
        yield* reportStep("provision");
        if (plan.copyCwd) yield* docker.copyTo(agent.name, `${plan.cwd}/.`, plan.workdir);
        const prov = yield* docker.exec(agent.name, spec.provision, { user: "root" });
        if (prov.exitCode !== 0) return yield* failed(`provisioning the agent: ${prov.stderr.trim() || `exit ${prov.exitCode}`}`);
      }, Effect11.mapError((e) => e instanceof DockerError ? toBackendError(e) : e));
      const execOptions = (plan, user) => ({ user: userOf(user), workdir: plan.workdir, env: { ...plan.env, HOME: AGENT_HOME } });
      const inspect = (slug) => docker.listLabelled(slug).pipe(
        Effect11.map(ofRoot),
        Effect11.map(
          (rs) => [...new Set(rs.map((r) => r.slug))].map((s) => ({
            slug: s,
            status: statusOf(names(s), s, rs),
            parts: rs.filter((r) => r.slug === s && r.kind === "container").map((r) => r.name)
          }))
        ),
        Effect11.mapError(toBackendError)
      );
      return Backend.of({
        name: "docker",
        preflight: Effect11.void,
        addressesInUse: docker.networkSubnets.pipe(
          Effect11.map((nets) => nets.flatMap((n) => n.subnets)),
          Effect11.mapError(toBackendError)
        ),
        images: Effect11.fnUntraced(function* (spec) {
          const sources = spec.sources ?? { agent: agentImageSource(), bundle: bundleImageSource() };
          const progress = yield* Progress;
          const onProgress = (line) => Effect11.runSync(progress.report({ _tag: "BuildOutput", line }));
          const baseIds = yield* baseImageIds([sources.agent, sources.bundle]);
          const [agent, bundle2] = yield* Effect11.all([
            ensureImage(sources.agent, { env: spec.env, baseIds, onProgress }),
            ensureImage(sources.bundle, { env: spec.env, baseIds, onProgress })
          ], { concurrency: 2 });
          return { agent: agent.tag, bundle: bundle2.tag };
        }, Effect11.provideService(Docker, docker), Effect11.mapError(toBackendError)),
        network,
        bundle,
        sandbox,
        exec: (plan, argv, options) => docker.exec(names(plan.slug).agent, argv, { ...execOptions(plan, options.user), ...options.stdin !== void 0 ? { stdin: options.stdin } : {} }).pipe(
          Effect11.mapError(toBackendError)
        ),
        attach: (plan, argv, options) => docker.execInteractive(names(plan.slug).agent, argv, {
          tty: process.stdin.isTTY === true && process.stdout.isTTY === true,
          ...execOptions(plan, options.user)
        }).pipe(Effect11.mapError(toBackendError)),
        inspect,
        ...docker.events ? { changes: (onChange) => docker.events(rootId, onChange).pipe(Effect11.mapError(toBackendError)) } : {},
        logs: Effect11.fnUntraced(function* (slug, options) {
          const name = names(slug).bundle;
          yield* docker.containerState(name);
          yield* docker.logs(name, { follow: options.follow });
        }, Effect11.mapError(toBackendError)),
        remove: Effect11.fnUntraced(function* (slug) {
          const leftovers = [];
          let holdsAddress = false;
          const mine = (yield* docker.listLabelled(slug)).filter((r) => r.root === rootId || r.root === void 0);
          for (const r of inRemovalOrder(mine)) {
            yield* removeResource(r).pipe(Effect11.catch(
              (e) => Effect11.sync(() => {
                leftovers.push(`${r.kind} ${r.name}: ${e.message}`);
                if (r.kind !== "volume") holdsAddress = true;
              })
            ));
          }
          return { leftovers, holdsAddress };
        }, Effect11.mapError(toBackendError)),
        removeOrphans: Effect11.fnUntraced(function* (known, options) {
          const removed = [];
          for (const r of inRemovalOrder(ofRoot(yield* docker.listLabelled()).filter((r2) => !known.has(r2.slug)))) {
            if (!options.dryRun) yield* removeResource(r);
            removed.push(`${r.kind} ${r.name}`);
          }
          return removed;
        }, Effect11.mapError(toBackendError))
      });
    });
    layerWith = Layer4.effect(Backend, make4);
    layer7 = layerWith.pipe(Layer4.provide(Layer4.mergeAll(layer5, layer6)));
  }
});

// src/layers/SmolmachinesBackend.ts
import { Effect as Effect12, Layer as Layer5 } from "effect";
var notBuilt, layer8;
var init_SmolmachinesBackend = __esm({
  "src/layers/SmolmachinesBackend.ts"() {
    "use strict";
    init_Backend();
    notBuilt = new BackendError({ backend: "smolmachines", reason: new BackendNotBuilt({ backend: "smolmachines" }) });
    layer8 = Layer5.succeed(Backend, Backend.of({
      name: "smolmachines",
      preflight: Effect12.fail(notBuilt),
      addressesInUse: Effect12.succeed([]),
      images: () => Effect12.fail(notBuilt),
      network: () => Effect12.fail(notBuilt),
      bundle: () => Effect12.fail(notBuilt),
      sandbox: () => Effect12.fail(notBuilt),
      exec: () => Effect12.fail(notBuilt),
      attach: () => Effect12.fail(notBuilt),
      inspect: () => Effect12.succeed([]),
      logs: () => Effect12.fail(notBuilt),
      remove: () => Effect12.succeed({ leftovers: [], holdsAddress: false }),
      removeOrphans: () => Effect12.succeed([])
    }));
  }
});

// src/layers/Backends.ts
import { LayerMap } from "effect";
var backendLayers, Backends, backendNames;
var init_Backends = __esm({
  "src/layers/Backends.ts"() {
    "use strict";
    init_DockerBackend();
    init_SmolmachinesBackend();
    backendLayers = {
      docker: layer7,
      smolmachines: layer8
    };
    Backends = class extends LayerMap.Service()("bot-bottle/Backends", { layers: backendLayers }) {
    };
    backendNames = Object.keys(backendLayers);
  }
});

// src/schema/Manifest.ts
import { Schema as Schema9 } from "effect";
var Name, EnvMap, Provider, AGENT_COLORS, AgentColor, AgentLabel, Agent, Backend2, RefPattern, PushPolicy, DeployKey, GitUpstream, MemorySize, Bottle, Manifest;
var init_Manifest = __esm({
  "src/schema/Manifest.ts"() {
    "use strict";
    init_Route();
    Name = Schema9.String.pipe(
      Schema9.check(
        Schema9.isPattern(/^[a-z][a-z0-9-]{0,30}$/u, {
          message: "expected a name of lower-case letters, digits and '-', starting with a letter (at most 31 characters)"
        })
      )
    );
    EnvMap = Schema9.Record(Schema9.String, Schema9.String).annotate({
      description: "Environment variables (plain values: never secrets; tokens go through egress routes)"
    });
    Provider = Schema9.Literals(["claude"]);
    AGENT_COLORS = ["red", "green", "yellow", "blue", "magenta", "cyan", "white", "gray"];
    AgentColor = Schema9.Literals(AGENT_COLORS);
    AgentLabel = Schema9.String.pipe(
      Schema9.check(
        Schema9.isPattern(/^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,11}$/u, {
          message: "expected a short label: letters, digits, space, '.', '_' or '-', starting with a letter or digit (at most 12 characters)"
        })
      )
    );
    Agent = Schema9.Struct({
      bottle: Name.annotate({ description: "The bottle (key of `bottles`) this agent runs in" }),
      provider: Schema9.optionalKey(Provider).annotate({ description: "How to run the agent (default claude)" }),
      command: Schema9.optionalKey(Schema9.NonEmptyArray(Schema9.String)).annotate({
        description: "argv to run in the sandbox (default from the provider)"
      }),
      prompt: Schema9.optionalKey(Schema9.String).annotate({
        description: "System prompt to append: inline markdown, or a path to a .md file (relative to the manifest)"
      }),
      skills: Schema9.optionalKey(Schema9.Array(Schema9.String)).annotate({
        description: "Skill directories (relative to the manifest) copied into the agent's skills dir"
      }),
      env: Schema9.optionalKey(EnvMap),
      label: Schema9.optionalKey(AgentLabel).annotate({ description: "Short label shown by `bottle dash` (default: the agent's name)" }),
      color: Schema9.optionalKey(AgentColor).annotate({ description: "The agent's colour in `bottle dash`: red, green, yellow, blue, magenta, cyan, white or gray" })
    });
    Backend2 = Schema9.Literals(["docker", "smolmachines"]);
    RefPattern = Schema9.String.pipe(
      Schema9.check(
        Schema9.isPattern(/^refs\/[A-Za-z0-9._\/*-]+$/u, { message: 'expected a ref pattern like "refs/heads/agent/*"' })
      )
    );
    PushPolicy = Schema9.Struct({
      allow: Schema9.optionalKey(Schema9.Array(RefPattern)).annotate({
        description: "Ref patterns the agent may push (default refs/heads/bottle/*)"
      }),
      force: Schema9.optionalKey(Schema9.Boolean).annotate({ description: "Allow non-fast-forward pushes (default false)" }),
      delete: Schema9.optionalKey(Schema9.Boolean).annotate({ description: "Allow deleting refs (default false)" }),
      tags: Schema9.optionalKey(Schema9.Boolean).annotate({ description: "Allow pushing tags (default false)" })
    });
    DeployKey = Schema9.Struct({
      provider: Schema9.Literals(["github", "gitea"]),
      api_url: Schema9.optionalKey(
        Schema9.String.pipe(Schema9.check(Schema9.isPattern(/^https?:\/\/\S+$/u, { message: "expected an http(s) URL" })))
      ).annotate({ description: "The git host's API base (default https://api.github.com for github; required for gitea)" }),
      repo: Schema9.String.pipe(
        Schema9.check(Schema9.isPattern(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/u, { message: 'expected "owner/name"' }))
      ),
      token_env: EnvVarName.annotate({ description: "Env var holding the API token that may create deploy keys" })
    }).check(
      // GitHub's API has one address; a Gitea server's is wherever it runs: nothing to default to.
      Schema9.makeFilter(
        (k) => k.provider !== "gitea" || k.api_url !== void 0 || { path: ["api_url"], issue: "required for a gitea deploy key (the server's API base, e.g. https://gitea.example.com/api/v1)" },
        // (api_url named in `then` too: a validator's strict mode wants each required key defined beside it.)
        { toJsonSchema: () => ({ if: { properties: { provider: { const: "gitea" } } }, then: { properties: { api_url: { type: "string" } }, required: ["api_url"] } }) }
      )
    );
    GitUpstream = Schema9.Struct({
      name: Name,
      url: Schema9.String.pipe(
        Schema9.check(
          Schema9.isPattern(/^(?:ssh:\/\/\S+|[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:\S+|https?:\/\/\S+|file:\/\/\S+)$/u, {
            message: "expected a git URL (ssh://\u2026, user@host:path, https://\u2026 or file://\u2026)"
          })
        )
      ),
      identity_file: Schema9.optionalKey(Schema9.String),
      deploy_key: Schema9.optionalKey(DeployKey),
      known_hosts_file: Schema9.optionalKey(Schema9.String),
      push: Schema9.optionalKey(PushPolicy)
    });
    MemorySize = Schema9.String.pipe(
      Schema9.check(Schema9.isPattern(/^[1-9][0-9]*[kmgKMG]?$/u, { message: 'expected a size like "4g" or "512m"' }))
    );
    Bottle = Schema9.Struct({
      backend: Schema9.optionalKey(Backend2).annotate({ description: "docker (default) or smolmachines" }),
      env: Schema9.optionalKey(EnvMap),
      egress: Schema9.optionalKey(Schema9.Struct({ routes: Schema9.Array(Route) })),
      git: Schema9.optionalKey(Schema9.Struct({ upstreams: Schema9.Array(GitUpstream) })),
      supervise: Schema9.optionalKey(Schema9.Boolean),
      workspace: Schema9.optionalKey(
        Schema9.Struct({
          copy_cwd: Schema9.optionalKey(Schema9.Boolean).annotate({ description: "Copy the current directory into the sandbox (a snapshot; the host copy is untouched)" }),
          mount_cwd: Schema9.optionalKey(Schema9.Boolean).annotate({
            description: "Bind-mount the current directory read-write at workdir instead: the agent edits your files in place"
          }),
          workdir: Schema9.optionalKey(
            Schema9.String.pipe(Schema9.check(Schema9.isPattern(/^\/[A-Za-z0-9._\/-]*$/u, { message: "expected an absolute path of letters, digits, '.', '_', '-' and '/'" })))
          )
        })
      ),
      resources: Schema9.optionalKey(
        Schema9.Struct({
          cpus: Schema9.optionalKey(Schema9.Finite.pipe(Schema9.check(Schema9.isBetween({ minimum: 0.1, maximum: 256 })))),
          memory: Schema9.optionalKey(MemorySize)
        })
      )
    });
    Manifest = Schema9.Struct({
      agents: Schema9.Record(Schema9.String, Agent),
      bottles: Schema9.Record(Schema9.String, Bottle)
    }).annotate({ title: "bot-bottle manifest (bottle.yaml)" });
  }
});

// src/schema/BottlePlan.ts
import { Schema as Schema10, SchemaTransformation } from "effect";
var Daemon, DockerRuntime, SmolmachinesRuntime, BackendRuntime, runtimeFor, planFields, BottlePlan, BottlePlanV1, SavedBottlePlan, BottleMeta;
var init_BottlePlan = __esm({
  "src/schema/BottlePlan.ts"() {
    "use strict";
    init_Manifest();
    init_BundleProtocol();
    init_Route();
    Daemon = Schema10.Literals(DAEMON_NAMES);
    DockerRuntime = Schema10.Struct({
      backend: Schema10.Literal("docker"),
      internalNetwork: Schema10.String,
      egressNetwork: Schema10.String
    });
    SmolmachinesRuntime = Schema10.Struct({
      backend: Schema10.Literal("smolmachines"),
      bundleNetwork: Schema10.String,
      machine: Schema10.String
    });
    BackendRuntime = Schema10.Union([DockerRuntime, SmolmachinesRuntime]);
    runtimeFor = {
      docker: (base) => ({ backend: "docker", internalNetwork: `${base}-int`, egressNetwork: `${base}-ext` }),
      smolmachines: (base) => ({ backend: "smolmachines", bundleNetwork: `${base}-net`, machine: `${base}-agent` })
    };
    planFields = {
      slug: Schema10.String,
      agent: Schema10.String,
      /** The agent's `label` and `color` from the manifest (for `bottle dash`). */
      label: Schema10.optionalKey(Schema10.String),
      color: Schema10.optionalKey(AgentColor),
      bottle: Schema10.String,
      backend: Backend2,
      provider: Provider,
      manifestFile: Schema10.String,
      cwd: Schema10.String,
      /** argv run in the sandbox when attaching. */
      command: Schema10.Array(Schema10.String),
      /** The agent's environment: plain values and placeholders only. */
      env: Schema10.Record(Schema10.String, Schema10.String),
      workdir: Schema10.String,
      copyCwd: Schema10.Boolean,
      /** Bind-mount the cwd at workdir (read-write) instead of copying it. */
      mountCwd: Schema10.optionalKey(Schema10.Boolean),
      prompt: Schema10.String,
      promptPath: Schema10.String,
      skills: Schema10.Array(Schema10.Struct({ name: Schema10.String, source: Schema10.String })),
      /** The bottle's leased address block and the bundle's address in it: what the agent reaches. */
      network: Schema10.Struct({
        subnetIndex: Schema10.Number,
        subnet: Schema10.String,
        bundleIp: Schema10.String
      }),
      egress: Schema10.Struct({
        routes: Schema10.Array(Route),
        /** Env var names of tokens the bundle gets from the host; `present` on the host at plan time. */
        tokens: Schema10.Array(Schema10.Struct({ env: Schema10.String, present: Schema10.Boolean }))
      }),
      git: Schema10.Struct({ upstreams: Schema10.Array(GitUpstream) }),
      supervise: Schema10.Boolean,
      daemons: Schema10.Array(Daemon),
      resources: Schema10.Struct({ cpus: Schema10.optionalKey(Schema10.Number), memory: Schema10.optionalKey(Schema10.String) })
    };
    BottlePlan = Schema10.Struct({
      version: Schema10.Literal(2),
      ...planFields,
      /** Backend-specific parts; its `backend` is the plan's. */
      runtime: BackendRuntime
    }).check(Schema10.makeFilter((p) => p.runtime.backend === p.backend || `runtime.backend ${p.runtime.backend} disagrees with backend ${p.backend}`));
    BottlePlanV1 = Schema10.Struct({
      version: Schema10.Literal(1),
      ...planFields,
      network: Schema10.Struct({ subnetIndex: Schema10.Number, subnet: Schema10.String, bundleIp: Schema10.String, internal: Schema10.String, egress: Schema10.String })
    });
    SavedBottlePlan = Schema10.Union([
      BottlePlan,
      BottlePlanV1.pipe(Schema10.decodeTo(BottlePlan, SchemaTransformation.transform({
        decode: ({ network: { internal, egress, ...network }, ...v1 }) => ({
          ...v1,
          version: 2,
          network,
          runtime: { backend: "docker", internalNetwork: internal, egressNetwork: egress }
        }),
        encode: ({ runtime, network, ...plan }) => ({
          ...plan,
          version: 1,
          network: { ...network, internal: runtime.backend === "docker" ? runtime.internalNetwork : "", egress: runtime.backend === "docker" ? runtime.egressNetwork : "" }
        })
      })))
    ]);
    BottleMeta = Schema10.Struct({
      slug: Schema10.String,
      backend: Backend2,
      createdAt: Schema10.String,
      agentImage: Schema10.optionalKey(Schema10.String),
      bundleImage: Schema10.optionalKey(Schema10.String),
      deployKeys: Schema10.Array(Schema10.Struct({
        provider: Schema10.Literals(["github", "gitea"]),
        apiUrl: Schema10.String,
        repo: Schema10.String,
        id: Schema10.Number,
        title: Schema10.String,
        tokenEnv: Schema10.String
      }))
    });
  }
});

// src/services/GitHost.ts
import { Context as Context6, Schema as Schema11 } from "effect";
var GitHostRequestFailed, GitHostUnreachable, GitHostMissingToken, GitHostUnsupported, GitHostError, GitHost;
var init_GitHost = __esm({
  "src/services/GitHost.ts"() {
    "use strict";
    GitHostRequestFailed = class extends Schema11.TaggedClass()("RequestFailed", {
      method: Schema11.String,
      url: Schema11.String,
      status: Schema11.Number,
      body: Schema11.String
    }) {
    };
    GitHostUnreachable = class extends Schema11.TaggedClass()("Unreachable", {
      url: Schema11.String,
      message: Schema11.String
    }) {
    };
    GitHostMissingToken = class extends Schema11.TaggedClass()("MissingToken", {
      tokenEnv: Schema11.String
    }) {
    };
    GitHostUnsupported = class extends Schema11.TaggedClass()("Unsupported", {
      message: Schema11.String
    }) {
    };
    GitHostError = class extends Schema11.TaggedError()("GitHostError", {
      reason: Schema11.Union([GitHostRequestFailed, GitHostUnreachable, GitHostMissingToken, GitHostUnsupported])
    }) {
      get message() {
        const r = this.reason;
        switch (r._tag) {
          case "RequestFailed":
            return `${r.method} ${r.url} answered ${r.status}: ${r.body.slice(0, 200)}`;
          case "Unreachable":
            return `${r.url} unreachable: ${r.message}`;
          case "MissingToken":
            return `deploy keys need an API token in $${r.tokenEnv}, which is not set`;
          case "Unsupported":
            return r.message;
        }
      }
    };
    GitHost = class extends Context6.Service()("bot-bottle/GitHost") {
    };
  }
});

// src/programs/deployKeys.ts
import * as fs6 from "node:fs";
import * as os4 from "node:os";
import * as path7 from "node:path";
import { Effect as Effect14, Option as Option4, Redacted as Redacted4, Ref, Schema as Schema12 } from "effect";
var deployKeyFile, GITHUB_API, DeployKeyFailed, deployKeyPair, record, acquireDeployKeys, keepRecord, revokeRecordedKeys;
var init_deployKeys = __esm({
  "src/programs/deployKeys.ts"() {
    "use strict";
    init_BottlePlan();
    init_GitHost();
    init_ProcessRunner();
    init_StateStore();
    deployKeyFile = (upstream) => `git-gate/keys/${upstream}`;
    GITHUB_API = "https://api.github.com";
    DeployKeyFailed = class extends Schema12.TaggedError()("DeployKeyFailed", { message: Schema12.String }) {
    };
    deployKeyPair = Effect14.fn("deployKeyPair")(function* (comment) {
      const runner = yield* ProcessRunner;
      const dir = yield* Effect14.acquireRelease(
        Effect14.try({
          try: () => fs6.mkdtempSync(path7.join(os4.tmpdir(), "bottle-key-")),
          catch: (e) => new DeployKeyFailed({ message: `temp dir: ${e.message}` })
        }),
        (d) => Effect14.sync(() => fs6.rmSync(d, { recursive: true, force: true }))
      );
      const file = path7.join(dir, "key");
      yield* runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]).pipe(
        Effect14.mapError((e) => new DeployKeyFailed({ message: e.message }))
      );
      return yield* Effect14.try({
        try: () => ({ publicKey: fs6.readFileSync(`${file}.pub`, "utf8").trim(), privateKey: fs6.readFileSync(file, "utf8") }),
        catch: (e) => new DeployKeyFailed({ message: `reading the key ssh-keygen made: ${e.message}` })
      });
    }, Effect14.scoped);
    record = (ref, tokenEnv) => ({ provider: ref.provider, apiUrl: ref.apiUrl, repo: ref.repo, id: ref.id, title: ref.title, tokenEnv });
    acquireDeployKeys = Effect14.fnUntraced(function* (plan, options, revocationFailures) {
      const state = yield* StateStore;
      const gitHost = yield* GitHost;
      const slug = plan.slug;
      const previous = options.fresh ? Option4.none() : yield* state.readJsonIfAny(slug, "meta.json", BottleMeta);
      const meta = yield* Ref.make({
        slug,
        backend: plan.backend,
        createdAt: (/* @__PURE__ */ new Date()).toISOString(),
        deployKeys: Option4.match(previous, { onNone: () => [], onSome: (m) => m.deployKeys })
      });
      const saveMeta = (f) => Ref.updateAndGet(meta, f).pipe(Effect14.flatMap((m) => state.writeJson(slug, "meta.json", m)));
      yield* saveMeta((m) => m);
      const created = [];
      yield* Effect14.addFinalizer(
        () => Ref.get(revocationFailures).pipe(
          Effect14.flatMap((failed2) => {
            const revoked = (k) => created.some((c) => c.repo === k.repo && c.id === k.id) && !failed2.some((f) => f.key.repo === k.repo && f.key.id === k.id);
            return saveMeta((m) => ({ ...m, deployKeys: m.deployKeys.filter((k) => !revoked(k)) }));
          }),
          Effect14.catchCause((c) => Effect14.logError(`could not update ${path7.join(state.bottleDir(slug), "meta.json")}`, c))
        )
      );
      for (const u of plan.git.upstreams) {
        if (!u.deploy_key) continue;
        const dk = u.deploy_key;
        const apiUrl = dk.api_url ?? (dk.provider === "github" ? GITHUB_API : void 0);
        if (apiUrl === void 0) return yield* new DeployKeyFailed({ message: `the gitea deploy key for ${dk.repo} has no api_url` });
        const title = `bot-bottle ${slug}`;
        const pair = yield* deployKeyPair(`${title} ${u.name}`);
        yield* state.writeFile(slug, deployKeyFile(u.name), pair.privateKey, 384);
        const ref = yield* gitHost.deployKey(
          { provider: dk.provider, apiUrl, repo: dk.repo, token: Redacted4.make(options.env[dk.token_env] ?? ""), title, publicKey: pair.publicKey, readOnly: false },
          (r, e) => Ref.update(revocationFailures, (xs) => [...xs, { key: record(r, dk.token_env), message: e.message }])
        );
        created.push(ref);
        yield* saveMeta((m) => ({ ...m, deployKeys: [...m.deployKeys, record(ref, dk.token_env)] }));
      }
      return { saveMeta };
    });
    keepRecord = Effect14.fnUntraced(function* (plan, keys) {
      const state = yield* StateStore;
      const recorded = yield* state.readJsonIfAny(plan.slug, "meta.json", BottleMeta).pipe(Effect14.map(Option4.isSome), Effect14.orElseSucceed(() => true));
      if (recorded) return;
      const meta = { slug: plan.slug, backend: plan.backend, createdAt: (/* @__PURE__ */ new Date()).toISOString(), deployKeys: keys };
      yield* state.writeJson(plan.slug, "meta.json", meta);
    });
    revokeRecordedKeys = Effect14.fnUntraced(function* (slug, options) {
      const state = yield* StateStore;
      const gitHost = yield* GitHost;
      const recorded = yield* state.readJsonIfAny(slug, "meta.json", BottleMeta);
      if (Option4.isNone(recorded)) return [];
      const meta = recorded.value;
      const failed2 = [];
      const remaining = [];
      for (const k of meta.deployKeys) {
        const revoked = yield* gitHost.revokeDeployKey(k, Redacted4.make(options.env[k.tokenEnv] ?? "")).pipe(
          Effect14.as(true),
          Effect14.catch((e) => Effect14.sync(() => (failed2.push({ repo: k.repo, id: k.id, message: e.message }), false)))
        );
        if (revoked) yield* Effect14.sync(() => options.onRevoked?.(k));
        else remaining.push(k);
      }
      if (remaining.length !== meta.deployKeys.length) yield* state.writeJson(slug, "meta.json", { ...meta, deployKeys: remaining });
      return failed2;
    });
  }
});

// src/schema/BottleCa.ts
import * as crypto from "node:crypto";
import * as fs7 from "node:fs/promises";
import * as path8 from "node:path";
import { Effect as Effect15, Schema as Schema13 } from "effect";
var caCertIn, caKeyIn, BottleCaError, loadX509, ALGORITHM, VALID_DAYS, RENEW_BEFORE_DAYS, DAY_MS, toPem, mintCa, usable, writeAtomic, ensureBottleCa;
var init_BottleCa = __esm({
  "src/schema/BottleCa.ts"() {
    "use strict";
    caCertIn = (dir) => path8.join(dir, "ca.pem");
    caKeyIn = (dir) => path8.join(dir, "ca-key.pem");
    BottleCaError = class extends Schema13.TaggedError()("BottleCaError", { path: Schema13.String, detail: Schema13.String }) {
      get message() {
        return `egress CA at ${this.path}: ${this.detail}`;
      }
    };
    loadX509 = async () => {
      const mod = await import("@peculiar/x509");
      const x509 = "cryptoProvider" in mod ? mod : mod.default;
      x509.cryptoProvider.set(globalThis.crypto);
      return x509;
    };
    ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    VALID_DAYS = 365;
    RENEW_BEFORE_DAYS = 7;
    DAY_MS = 24 * 60 * 60 * 1e3;
    toPem = (der, label) => `-----BEGIN ${label}-----
${Buffer.from(der).toString("base64").replace(/.{1,64}/g, "$&\n")}-----END ${label}-----
`;
    mintCa = async (commonName) => {
      const x509 = await loadX509();
      const keys = await globalThis.crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
      const now = Date.now();
      const cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: crypto.randomBytes(16).toString("hex").replace(/^[89a-f]/, "1"),
        name: `CN=${commonName}, O=bot-bottle`,
        notBefore: new Date(now - 60 * 60 * 1e3),
        notAfter: new Date(now + VALID_DAYS * DAY_MS),
        signingAlgorithm: ALGORITHM,
        keys,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)
        ]
      });
      const pkcs8 = await globalThis.crypto.subtle.exportKey("pkcs8", keys.privateKey);
      return { certPem: cert.toString("pem") + "\n", keyPem: toPem(pkcs8, "PRIVATE KEY") };
    };
    usable = (certPem, keyPem) => {
      try {
        const cert = new crypto.X509Certificate(certPem);
        const key = crypto.createPrivateKey(keyPem);
        if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") return false;
        if (!cert.ca || !cert.checkPrivateKey(key)) return false;
        return new Date(cert.validTo).getTime() - Date.now() > RENEW_BEFORE_DAYS * DAY_MS;
      } catch {
        return false;
      }
    };
    writeAtomic = async (file, data, mode) => {
      const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`;
      const handle = await fs7.open(tmp, "wx", mode);
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs7.rename(tmp, file);
    };
    ensureBottleCa = Effect15.fn("ensureBottleCa")(function* (dir) {
      const certPath = caCertIn(dir);
      const keyPath = caKeyIn(dir);
      const fail = (cause) => new BottleCaError({ path: dir, detail: cause instanceof Error ? cause.message : String(cause) });
      return yield* Effect15.tryPromise({
        try: async () => {
          await fs7.mkdir(dir, { recursive: true, mode: 448 });
          const existing = await Promise.all([fs7.readFile(certPath, "utf8"), fs7.readFile(keyPath, "utf8")]).catch(() => void 0);
          if (existing && usable(existing[0], existing[1])) {
            const st = await fs7.stat(keyPath);
            if ((st.mode & 63) !== 0) await fs7.chmod(keyPath, 384);
            return { certPem: existing[0], certPath, keyPath };
          }
          const { certPem, keyPem } = await mintCa(`bot-bottle egress CA ${path8.basename(path8.dirname(dir)) || "bottle"}`);
          await writeAtomic(keyPath, keyPem, 384);
          await writeAtomic(certPath, certPem, 420);
          return { certPem, certPath, keyPath };
        },
        catch: fail
      }).pipe(
        // The promise cannot be stopped: an interruption waits for it, or its writes (mkdir
        // included) would land after the caller's cleanup, bringing back a removed state dir with
        // a CA key in it.
        Effect15.uninterruptible
      );
    });
  }
});

// src/programs/subnetLease.ts
import { Effect as Effect16 } from "effect";
var ipv4Range, poolIndicesUsed, withSubnet, subnetsInUse, leaseSubnet, networkOnFreeSubnet;
var init_subnetLease = __esm({
  "src/programs/subnetLease.ts"() {
    "use strict";
    init_Bundle();
    init_Backend();
    init_StateStore();
    ipv4Range = (cidr) => {
      const m = cidr.trim().match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/);
      if (!m) return void 0;
      const octets = m.slice(1, 5).map(Number);
      const bits = Number(m[5]);
      if (octets.some((o) => o > 255) || bits > 32) return void 0;
      const addr = octets.reduce((a, o) => a * 256 + o, 0);
      const size = 2 ** (32 - bits);
      const first = addr - addr % size;
      return [first, first + size - 1];
    };
    poolIndicesUsed = (subnets) => {
      const used = /* @__PURE__ */ new Set();
      const ranges = subnets.flatMap((s) => {
        const r = ipv4Range(s);
        return r ? [r] : [];
      });
      for (let index = 0; index < SUBNET_POOL_SIZE; index++) {
        const [first, last] = ipv4Range(subnetFor(index).subnet);
        if (ranges.some(([a, b]) => a <= last && first <= b)) used.add(index);
      }
      return used;
    };
    withSubnet = (plan, index) => {
      const { subnet, bundleIp } = subnetFor(index);
      if (index === plan.network.subnetIndex) return plan;
      const proxies = proxyEnv(bundleIp);
      const env = { ...plan.env };
      for (const k of PROXY_VARIABLES) if (k in env) env[k] = proxies[k];
      return { ...plan, env, network: { ...plan.network, subnetIndex: index, subnet, bundleIp } };
    };
    subnetsInUse = Effect16.gen(function* () {
      return poolIndicesUsed(yield* (yield* Backend).addressesInUse);
    });
    leaseSubnet = Effect16.fnUntraced(function* (plan, avoid) {
      const state = yield* StateStore;
      const lease = yield* state.lease(SUBNET_POOL, SUBNET_POOL_SIZE, plan.slug, { avoid });
      const leased = withSubnet(plan, lease.index);
      yield* state.writeJson(plan.slug, "plan.json", leased);
      return leased;
    });
    networkOnFreeSubnet = Effect16.fnUntraced(function* (leased, avoid) {
      const backend = yield* Backend;
      let plan = leased;
      for (; ; ) {
        const network = yield* backend.network(plan).pipe(
          Effect16.catchIf((e) => e.reason._tag === "AddressTaken", () => Effect16.succeed(void 0))
        );
        if (network) return { plan, network };
        yield* Effect16.logDebug(`subnet ${plan.network.subnet} is taken on the ${backend.name} backend; trying the next one`);
        avoid.add(plan.network.subnetIndex);
        plan = yield* leaseSubnet(plan, avoid);
      }
    });
  }
});

// src/schema/ManifestError.ts
import { Schema as Schema14 } from "effect";
var ManifestProblem, ManifestError, formatKeyPath;
var init_ManifestError = __esm({
  "src/schema/ManifestError.ts"() {
    "use strict";
    ManifestProblem = Schema14.Struct({
      line: Schema14.optionalKey(Schema14.Number),
      column: Schema14.optionalKey(Schema14.Number),
      /** Dotted key path, e.g. `bottles.dev.egress.routes[0].host`; empty for the document. */
      path: Schema14.String,
      message: Schema14.String
    });
    ManifestError = class extends Schema14.TaggedError()("ManifestError", {
      file: Schema14.String,
      problems: Schema14.Array(ManifestProblem)
    }) {
      get message() {
        return this.problems.map((p) => {
          const where = p.line !== void 0 ? `${this.file}:${p.line}${p.column !== void 0 ? `:${p.column}` : ""}` : this.file;
          return `${where}: ${p.path ? `${p.path}: ` : ""}${p.message}`;
        }).join("\n");
      }
    };
    formatKeyPath = (path19) => path19.reduce(
      (acc, k) => typeof k === "number" ? `${acc}[${k}]` : acc === "" ? String(k) : `${acc}.${String(k)}`,
      ""
    );
  }
});

// src/schema/SecretPatterns.ts
var secretPatterns, urlCredentials, manifestSecretPatterns, findSecret, findSecretLines, secretishKey, secretNamingKey, namesSecret, isEnvVarName, isSecretReference, isFlagValue, looksLikeLiteralSecret;
var init_SecretPatterns = __esm({
  "src/schema/SecretPatterns.ts"() {
    "use strict";
    secretPatterns = [
      { name: "private key block", regex: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/ },
      { name: "Anthropic API key", regex: /\bsk-ant-[A-Za-z0-9_-]{20,}/ },
      { name: "OpenAI API key", regex: /\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}/ },
      { name: "GitHub token", regex: /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}/ },
      { name: "GitHub fine-grained token", regex: /\bgithub_pat_[A-Za-z0-9_]{40,}/ },
      { name: "GitLab token", regex: /\bglpat-[A-Za-z0-9_-]{20,}/ },
      { name: "Slack token", regex: /\bxox[abposr]-[A-Za-z0-9-]{10,}/ },
      { name: "AWS access key id", regex: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/ },
      { name: "Google API key", regex: /\bAIza[0-9A-Za-z_-]{35}/ },
      { name: "Stripe secret key", regex: /\b[rs]k_live_[0-9A-Za-z]{20,}/ },
      { name: "npm token", regex: /\bnpm_[A-Za-z0-9]{36}/ },
      { name: "JSON web token", regex: /\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/ }
    ];
    urlCredentials = {
      name: "password in a URL",
      regex: /\b[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s/:@]*:(?!\$[A-Za-z_][A-Za-z0-9_]*@|\$\{[A-Za-z_][A-Za-z0-9_]*\}@|<[^\s/@>]*>@|\*+@)[^\s/@]+@[^\s/@]/
    };
    manifestSecretPatterns = [...secretPatterns, urlCredentials];
    findSecret = (text) => manifestSecretPatterns.find((p) => p.regex.test(text));
    findSecretLines = (text) => text.split(/\r?\n/).flatMap((l, i) => {
      const pattern = findSecret(l);
      return pattern ? [{ line: i + 1, pattern }] : [];
    });
    secretishKey = /(?:token|secret|password|passwd|api[_-]?key|private[_-]?key|credential)/i;
    secretNamingKey = /(?:password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key|secret[_-]?key|access[_-]?key|credentials?)$/i;
    namesSecret = (key) => secretNamingKey.test(key);
    isEnvVarName = (v) => /^[A-Z_][A-Z0-9_]*$/.test(v) && (v.includes("_") || v.length < 16);
    isSecretReference = (value) => {
      const v = value.trim();
      return v === "" || isEnvVarName(v) || /^\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})$/.test(v) || /^(?:\/|~\/|\.\.?\/)/.test(v);
    };
    isFlagValue = (value) => /^(?:true|false|yes|no|on|off|[+-]?[0-9]{1,4})$/i.test(value.trim());
    looksLikeLiteralSecret = (key, value) => {
      if (!secretishKey.test(key) || /_env$/i.test(key)) return false;
      if (namesSecret(key)) return !isSecretReference(value) && !isFlagValue(value);
      if (isEnvVarName(value)) return false;
      if (value.length < 16 || /\s/.test(value)) return false;
      if (/^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/.test(value) || value.startsWith("/") || value.startsWith("~")) return false;
      const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((r) => r.test(value)).length;
      return classes >= 3 || /^[0-9a-f]{32,}$/i.test(value);
    };
  }
});

// src/schema/defaultManifest.ts
var DEFAULT_MANIFEST_NAME, defaultManifestYaml;
var init_defaultManifest = __esm({
  "src/schema/defaultManifest.ts"() {
    "use strict";
    DEFAULT_MANIFEST_NAME = "<built-in default manifest>";
    defaultManifestYaml = (env) => {
      const useApiKey = !env["CLAUDE_CODE_OAUTH_TOKEN"] && !!env["ANTHROPIC_API_KEY"];
      const auth = useApiKey ? `        auth: { header: x-api-key, token_env: ANTHROPIC_API_KEY, alternates: [authorization] }
        roles: [anthropic_api_key]` : `        auth: { header: authorization, scheme: Bearer, token_env: CLAUDE_CODE_OAUTH_TOKEN, alternates: [x-api-key] }
        roles: [claude_code_oauth]`;
      return `agents:
  claude:
    bottle: default
    provider: claude
bottles:
  default:
    backend: docker
    egress:
      routes:
      - host: api.anthropic.com
${auth}
    workspace: { copy_cwd: true, workdir: /workspace }
`;
    };
  }
});

// src/programs/loadManifest.ts
import * as fs8 from "node:fs";
import * as path9 from "node:path";
import { Effect as Effect17, Schema as Schema15, SchemaIssue } from "effect";
import * as YAML from "yaml";
var MANIFEST_FILE, findManifest, makeLocator, scalars, keyPathAt, yamlProblem, formatIssues, decodeManifest, parentKey, explainIssues, parseManifest, loadManifest;
var init_loadManifest = __esm({
  "src/programs/loadManifest.ts"() {
    "use strict";
    init_Manifest();
    init_ManifestError();
    init_SecretPatterns();
    init_defaultManifest();
    MANIFEST_FILE = "bottle.yaml";
    findManifest = (cwd) => {
      let dir = path9.resolve(cwd);
      for (; ; ) {
        const candidate = path9.join(dir, MANIFEST_FILE);
        if (fs8.existsSync(candidate) && !fs8.statSync(candidate).isDirectory()) return candidate;
        const parent = path9.dirname(dir);
        if (parent === dir) return void 0;
        dir = parent;
      }
    };
    makeLocator = (doc, lc) => (keyPath) => {
      const at = (offset) => {
        if (offset === void 0) return void 0;
        const p = lc.linePos(offset);
        return { line: p.line, column: p.col };
      };
      let node = doc.contents;
      let best = at(doc.contents?.range?.[0]);
      for (const seg of keyPath) {
        if (YAML.isMap(node)) {
          const pair = node.items.find((p) => YAML.isScalar(p.key) && String(p.key.value) === String(seg));
          if (!pair) return best;
          best = at(pair.key.range?.[0]) ?? best;
          node = pair.value;
        } else if (YAML.isSeq(node) && typeof seg === "number") {
          const item = node.items[seg];
          if (!item) return best;
          best = at(item.range?.[0]) ?? best;
          node = item;
        } else {
          return best;
        }
      }
      return best;
    };
    scalars = (node, keyPath, out) => {
      if (YAML.isMap(node)) {
        for (const pair of node.items) {
          const k = YAML.isScalar(pair.key) ? String(pair.key.value) : "?";
          if (YAML.isScalar(pair.key) && typeof pair.key.value === "string") out.push({ path: [...keyPath, k], value: k, key: "", to: pair.key.range?.[1] });
          scalars(pair.value, [...keyPath, k], out);
        }
      } else if (YAML.isSeq(node)) {
        node.items.forEach((item, i) => scalars(item, [...keyPath, i], out));
      } else if (YAML.isScalar(node) && typeof node.value === "string") {
        const last = keyPath[keyPath.length - 1];
        out.push({ path: keyPath, value: node.value, key: typeof last === "string" ? last : "", to: node.range?.[1] });
      }
    };
    keyPathAt = (node, offset, prefix) => {
      const inside2 = (n) => {
        const r = n?.range;
        return r != null && offset >= r[0] && offset < r[2];
      };
      if (YAML.isMap(node)) {
        for (const pair of node.items) {
          const k = YAML.isScalar(pair.key) ? String(pair.key.value) : "?";
          if (pair.key?.range?.[0] === offset) return [...prefix, k];
          if (inside2(pair.value)) {
            const found = keyPathAt(pair.value, offset, [...prefix, k]);
            if (found) return found;
          }
        }
      } else if (YAML.isSeq(node)) {
        for (const [i, item] of node.items.entries()) {
          if (inside2(item)) {
            const found = keyPathAt(item, offset, [...prefix, i]);
            if (found) return found;
          }
        }
      }
      return void 0;
    };
    yamlProblem = (e, doc, options) => {
      const offset = options.lineOffset ?? 0;
      const line = (e.linePos?.[0].line ?? 1) + offset;
      const pos = { line, column: e.linePos?.[0].col ?? 1 };
      switch (e.code) {
        case "DUPLICATE_KEY": {
          const keyPath = keyPathAt(doc.contents, e.pos[0], []);
          if (keyPath) return { ...pos, path: formatKeyPath(keyPath), message: `duplicate key "${String(keyPath[keyPath.length - 1])}"` };
          return { ...pos, path: "", message: "duplicate key (keys of a mapping must be unique)" };
        }
        case "MULTIPLE_DOCS":
          return { ...pos, path: "", message: `${options.subject} is one YAML document; found a second document at line ${line}` };
        case "TAB_AS_INDENT":
          return { ...pos, path: "", message: "tab used for indentation; YAML indents with spaces only" };
        default:
          return { ...pos, path: "", message: `YAML syntax error: ${e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "")}` };
      }
    };
    formatIssues = SchemaIssue.makeFormatterStandardSchemaV1();
    decodeManifest = Schema15.decodeUnknownExit(Manifest, { onExcessProperty: "error", errors: "all" });
    parentKey = (p) => p.slice(0, -1).map(String).join("\0");
    explainIssues = (issues) => {
      const missing = issues.filter((i) => i.message === "Missing key");
      const used = /* @__PURE__ */ new Set();
      const out = issues.flatMap((i) => {
        if (i.message === "Missing key") return [];
        if (i.message === "Expected no excess property") {
          const twin = missing.find((m) => parentKey(m.path) === parentKey(i.path) && !used.has(m));
          if (twin) used.add(twin);
          return [{ path: i.path, message: `unknown key${twin ? ` (did you mean "${String(twin.path[twin.path.length - 1])}"?)` : " (not part of the manifest format; see `bottle schema`)"}` }];
        }
        if (i.path.length === 0 && i.message === "Expected object") {
          return [{ path: i.path, message: "expected a mapping with the keys agents and bottles" }];
        }
        return [{ path: i.path, message: i.message.replace(/^Expected /, "expected ") }];
      });
      const byParent = /* @__PURE__ */ new Map();
      for (const m of missing.filter((m2) => !used.has(m2))) byParent.set(parentKey(m.path), [...byParent.get(parentKey(m.path)) ?? [], m]);
      const missingProblems = [...byParent.values()].map(
        (ms) => ms.length === 1 ? { path: ms[0].path, message: "required key is missing" } : { path: ms[0].path.slice(0, -1), message: `required keys are missing: ${ms.map((m) => String(m.path[m.path.length - 1])).join(", ")}` }
      );
      return [...out, ...missingProblems];
    };
    parseManifest = (text, file, dir) => Effect17.gen(function* () {
      const lc = new YAML.LineCounter();
      const doc = YAML.parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: true });
      const locate2 = makeLocator(doc, lc);
      const at = (keyPath, message) => {
        const pos = locate2(keyPath);
        return { ...pos ? { line: pos.line, column: pos.column } : {}, path: formatKeyPath(keyPath), message };
      };
      const lineHits = findSecretLines(text);
      const lineProblem = (h) => ({
        line: h.line,
        path: "",
        message: `looks like a literal secret (${h.pattern.name}) on this line, in a comment or a value; remove it: tokens are referenced by env-var name (token_env), never written in the manifest`
      });
      const empty = doc.contents === null || YAML.isScalar(doc.contents) && doc.contents.value === null;
      if (lineHits.length > 0 && (doc.errors.length > 0 || empty)) {
        return yield* new ManifestError({ file, problems: lineHits.map(lineProblem) });
      }
      if (doc.errors.length > 0) {
        return yield* new ManifestError({ file, problems: [yamlProblem(doc.errors[0], doc, { subject: "a manifest" })] });
      }
      if (empty) {
        return yield* new ManifestError({ file, problems: [{ line: 1, path: "", message: "empty manifest: expected a mapping with the keys agents and bottles" }] });
      }
      const found = [];
      scalars(doc.contents, [], found);
      const flagged = [];
      for (const f of found) {
        const pattern = findSecret(f.value);
        const message = pattern ? `looks like a literal secret (${pattern.name}); reference tokens by env-var name (token_env) instead of writing them in the manifest` : looksLikeLiteralSecret(f.key, f.value) ? namesSecret(f.key) ? `looks like a literal secret under "${f.key}": the agent never holds secrets (values reach it as written, nothing expands them); route the service that needs it through egress with auth: { token_env: NAME } so the real value stays on the host, or set the key to a file path` : `looks like a literal secret under "${f.key}"; reference tokens by env-var name (token_env) instead of writing them in the manifest` : void 0;
        if (message === void 0) continue;
        const problem = at(f.path, message);
        const first = problem.line ?? 1;
        flagged.push({ problem, lines: [first, f.to !== void 0 && f.to > 0 ? Math.max(first, lc.linePos(f.to - 1).line) : first] });
      }
      const secretProblems = [
        ...flagged.map((f) => f.problem),
        ...lineHits.filter((h) => !flagged.some((f) => h.line >= f.lines[0] && h.line <= f.lines[1])).map(lineProblem)
      ].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
      if (secretProblems.length > 0) return yield* new ManifestError({ file, problems: secretProblems });
      const raw = doc.toJS() ?? {};
      const exit = decodeManifest(raw);
      if (exit._tag === "Failure") {
        const err = exit.cause.reasons.find((r) => r._tag === "Fail");
        const issue = err && err._tag === "Fail" ? err.error.issue : void 0;
        const issues = (issue ? formatIssues(issue).issues : [{ path: [], message: "invalid manifest" }]).map((i) => ({
          path: (i.path ?? []).map((s) => typeof s === "object" && s !== null ? s.key : s),
          message: i.message
        }));
        return yield* new ManifestError({ file, problems: explainIssues(issues).map((i) => at(i.path, i.message)) });
      }
      const manifest = exit.value;
      const problems = [];
      const badName = (n) => !/^[a-z][a-z0-9-]{0,30}$/.test(n);
      const nameRule = "expected a name of lower-case letters, digits and '-', starting with a letter (at most 31 characters)";
      for (const section of ["agents", "bottles"]) {
        for (const n of Object.keys(manifest[section])) if (badName(n)) problems.push(at([section, n], `invalid name "${n}": ${nameRule}`));
      }
      const envMaps = [
        ...Object.entries(manifest.agents).map(([n, a]) => [["agents", n, "env"], a.env]),
        ...Object.entries(manifest.bottles).map(([n, b]) => [["bottles", n, "env"], b.env])
      ];
      for (const [p, env] of envMaps) {
        for (const k of Object.keys(env ?? {})) {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) problems.push(at([...p, k], `invalid environment variable name "${k}"`));
        }
      }
      for (const [name, agent] of Object.entries(manifest.agents)) {
        if (!(agent.bottle in manifest.bottles)) {
          const known = Object.keys(manifest.bottles);
          problems.push(at(["agents", name, "bottle"], `bottle "${agent.bottle}" is not defined under bottles (defined: ${known.length ? known.join(", ") : "none"})`));
        }
      }
      for (const [name, bottle] of Object.entries(manifest.bottles)) {
        const seen = /* @__PURE__ */ new Set();
        bottle.git?.upstreams.forEach((u, i) => {
          if (seen.has(u.name)) problems.push(at(["bottles", name, "git", "upstreams", i, "name"], `duplicate upstream name "${u.name}"`));
          seen.add(u.name);
          if (u.identity_file !== void 0 && u.deploy_key !== void 0) {
            problems.push(at(["bottles", name, "git", "upstreams", i], "set either identity_file or deploy_key, not both"));
          }
          if (u.identity_file === void 0 && u.deploy_key === void 0 && !u.url.startsWith("file://")) {
            problems.push(at(["bottles", name, "git", "upstreams", i], "needs identity_file or deploy_key (how the git gate authenticates upstream)"));
          }
        });
        if (bottle.workspace?.copy_cwd && bottle.workspace.mount_cwd) {
          problems.push(at(["bottles", name, "workspace", "mount_cwd"], "set either copy_cwd or mount_cwd, not both"));
        }
        const hosts = /* @__PURE__ */ new Set();
        bottle.egress?.routes.forEach((r, i) => {
          const key = `${r.host} ${(r.paths ?? []).join(",")} ${(r.methods ?? []).join(",")}`;
          if (hosts.has(key)) problems.push(at(["bottles", name, "egress", "routes", i, "host"], `duplicate route for ${r.host}`));
          hosts.add(key);
        });
      }
      if (problems.length > 0) return yield* new ManifestError({ file, problems });
      return { file, dir, manifest, isDefault: false, locate: locate2 };
    });
    loadManifest = Effect17.fn("loadManifest")(function* (options) {
      const file = options.manifestPath !== void 0 ? path9.resolve(options.cwd, options.manifestPath) : findManifest(options.cwd);
      if (file === void 0) {
        const loaded = yield* parseManifest(defaultManifestYaml(options.env), DEFAULT_MANIFEST_NAME, options.cwd);
        return { ...loaded, isDefault: true };
      }
      const text = yield* Effect17.try({
        try: () => fs8.readFileSync(file, "utf8"),
        catch: (e) => new ManifestError({ file, problems: [{ path: "", message: `cannot read the manifest: ${e.message}` }] })
      });
      return yield* parseManifest(text, file, path9.dirname(file));
    });
  }
});

// src/programs/workspace.ts
import * as fs9 from "node:fs";
import * as os5 from "node:os";
import * as path10 from "node:path";
import { Effect as Effect18, Option as Option5, Schema as Schema16 } from "effect";
var GUARDED, HOOK_MANAGERS, GUARDED_IF_PRESENT, WorkspaceError, NESTED_WALK_LIMIT, kindOf, inside, hooksPathOf, unquote, readIf, gitfileTarget, commonDirOf, enclosingRepo, gitlinksOf, ancestorsOf, inspectWorkspace, symlinkRefusal, workspaceLayout, caseInsensitiveAt, WorkspaceRecord, WORKSPACE_RECORD, removePlaceholders, releaseWorkspace, mountWorkspace, mountRefusal;
var init_workspace = __esm({
  "src/programs/workspace.ts"() {
    "use strict";
    init_StateStore();
    init_canonicalPath();
    init_loadManifest();
    GUARDED = [
      { name: ".git", why: "git metadata: config (core.fsmonitor, aliases, filters), hooks, submodule configs run at your next git command" },
      { name: MANIFEST_FILE, why: "bot-bottle's manifest: routes and the tokens they get at the next `bottle start` here" },
      { name: ".envrc", why: "direnv runs it when your shell enters the directory" },
      { name: ".vscode", why: "VS Code: tasks.json runOn folderOpen, settings that name programs (git.path, terminal env)" },
      { name: ".idea", why: "JetBrains IDEs: run configurations and startup tasks" },
      { name: ".devcontainer", why: "Dev Containers: initializeCommand runs on the host" },
      { name: ".devcontainer.json", why: "Dev Containers: initializeCommand runs on the host" },
      { name: ".zed", why: "Zed: settings name language-server binaries it starts on open" },
      { name: ".claude", why: "Claude Code on the host: project settings hooks run commands" },
      { name: ".mcp.json", why: "Claude Code and other MCP clients on the host: servers are commands" },
      { name: ".nvim.lua", why: "Neovim exrc" },
      { name: ".nvimrc", why: "Neovim/Vim exrc" },
      { name: ".exrc", why: "Vim exrc" },
      { name: ".helix", why: "Helix: languages.toml names language servers it starts, with no trust prompt" },
      { name: ".gemini", why: "Gemini CLI: project settings name MCP servers (commands)" },
      { name: ".codex", why: "Codex CLI: project config names MCP servers (commands)" },
      { name: ".cursor", why: "Cursor: mcp.json servers are commands" },
      { name: ".kiro", why: "Kiro: settings/mcp.json servers are commands, hooks" },
      { name: ".roo", why: "Roo Code: mcp.json servers are commands" },
      { name: ".opencode", why: "opencode: project config, plugins and MCP servers (commands)" },
      { name: "opencode.json", why: "opencode: MCP servers are commands" }
    ];
    HOOK_MANAGERS = [
      { signature: /generated by pre-commit/i, names: [".pre-commit-config.yaml", ".pre-commit-config.yml"] },
      {
        signature: /lefthook/,
        names: ["lefthook.yml", ".lefthook.yml", "lefthook.yaml", ".lefthook.yaml", "lefthook.toml", ".lefthook.toml", "lefthook.json", ".lefthook.json", "lefthook-local.yml", ".lefthook-local.yml", "lefthook-local.yaml", ".lefthook-local.yaml"]
      }
    ];
    GUARDED_IF_PRESENT = [".husky", "mise.toml", ".mise.toml", "mise.local.toml", ".mise.local.toml", ".mise", ".dir-locals.el"];
    WorkspaceError = class extends Schema16.TaggedError()("WorkspaceError", {
      path: Schema16.String,
      message: Schema16.String
    }) {
    };
    NESTED_WALK_LIMIT = 2e4;
    kindOf = (p) => {
      try {
        const st = fs9.lstatSync(p);
        if (st.isDirectory()) {
          const d = fs9.opendirSync(p);
          try {
            return d.readSync() === null ? "empty-dir" : "dir";
          } finally {
            d.closeSync();
          }
        }
        return st.isSymbolicLink() ? "symlink" : st.isFile() ? "file" : "other";
      } catch {
        return void 0;
      }
    };
    inside = (root, p) => p === root || p.startsWith(root.endsWith(path10.sep) ? root : root + path10.sep);
    hooksPathOf = (configText) => {
      let section = "";
      let value;
      for (const raw of configText.split(/\r?\n/)) {
        const line = raw.trim();
        const header = /^\[\s*([A-Za-z0-9.-]+)(?:\s+"[^"]*")?\s*\](.*)$/.exec(line);
        if (header) {
          section = header[1].toLowerCase();
          const rest = header[2].trim();
          if (rest === "" || rest.startsWith("#") || rest.startsWith(";")) continue;
          const kv2 = /^hookspath\s*=\s*(.*)$/i.exec(rest);
          if (section === "core" && kv2) value = unquote(kv2[1]);
          continue;
        }
        const kv = /^hookspath\s*=\s*(.*)$/i.exec(line);
        if (section === "core" && kv) value = unquote(kv[1]);
      }
      return value;
    };
    unquote = (v) => {
      let out = "";
      let quoted = false;
      for (let i = 0; i < v.length; i++) {
        const c = v[i];
        if (c === "\\" && i + 1 < v.length) {
          const n = v[++i];
          out += n === "n" ? "\n" : n === "t" ? "	" : n;
        } else if (c === '"') quoted = !quoted;
        else if (!quoted && (c === "#" || c === ";")) break;
        else out += c;
      }
      return out.trim();
    };
    readIf = (p) => {
      try {
        return fs9.readFileSync(p, "utf8");
      } catch {
        return void 0;
      }
    };
    gitfileTarget = (gitfile) => {
      const m = /^gitdir:\s*(.*?)\s*$/m.exec(readIf(gitfile) ?? "");
      return m ? path10.resolve(path10.dirname(gitfile), m[1]) : void 0;
    };
    commonDirOf = (gitDir) => {
      const c = readIf(path10.join(gitDir, "commondir"))?.trim();
      return c ? path10.resolve(gitDir, c) : gitDir;
    };
    enclosingRepo = (dir) => {
      for (let d = dir; ; d = path10.dirname(d)) {
        const dotGit = path10.join(d, ".git");
        const k = kindOf(dotGit);
        if (k === "dir" && kindOf(path10.join(dotGit, "HEAD")) !== void 0) return { gitDir: dotGit, top: d };
        if (k === "file") {
          const t = gitfileTarget(dotGit);
          if (t) return { gitDir: t, top: d };
        }
        if (path10.dirname(d) === d) return void 0;
      }
    };
    gitlinksOf = (index, hashSize = 20) => {
      const out = [];
      if (index.length < 12 || index.toString("latin1", 0, 4) !== "DIRC") return out;
      const version = index.readUInt32BE(4);
      const count = index.readUInt32BE(8);
      if (version < 2 || version > 4) return out;
      let at = 12;
      let previous = "";
      for (let i = 0; i < count; i++) {
        const start = at;
        if (at + 40 + hashSize + 2 > index.length) return out;
        const mode = index.readUInt32BE(at + 24);
        const flags = index.readUInt16BE(at + 40 + hashSize);
        at += 40 + hashSize + 2;
        if (version >= 3 && flags & 16384) at += 2;
        let name;
        if (version === 4) {
          let strip = 0;
          let b = index[at++];
          strip = b & 127;
          while (b & 128) {
            b = index[at++];
            strip = strip + 1 << 7 | b & 127;
          }
          const end = index.indexOf(0, at);
          if (end < 0) return out;
          const prev = Buffer.from(previous, "utf8");
          name = Buffer.concat([prev.subarray(0, prev.length - strip), index.subarray(at, end)]).toString("utf8");
          at = end + 1;
        } else {
          const end = index.indexOf(0, at);
          if (end < 0) return out;
          name = index.toString("utf8", at, end);
          at = start + Math.floor((end - start + 8) / 8) * 8;
        }
        previous = name;
        if ((mode & 61440) === 57344) out.push(name);
      }
      return out;
    };
    ancestorsOf = (rel) => {
      const parts = rel.split(path10.sep);
      return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join(path10.sep));
    };
    inspectWorkspace = (cwd) => {
      const root = fs9.realpathSync(cwd);
      const names = [...GUARDED.map((g) => g.name), "HEAD", ...HOOK_MANAGERS.flatMap((h) => h.names), ...GUARDED_IF_PRESENT];
      const kinds = {};
      for (const n of names) {
        const k = kindOf(path10.join(root, n));
        if (k) kinds[n] = k;
      }
      const dotGit = path10.join(root, ".git");
      const gitRepoAtRoot = kinds[".git"] === "file" || kinds[".git"] === "dir" && kindOf(path10.join(dotGit, "HEAD")) !== void 0;
      const metadata = /* @__PURE__ */ new Set();
      const addInside = (p) => {
        if (!p) return;
        const real = canonicalPath(p);
        if (inside(root, real) && real !== root && !inside(dotGit, real) && kindOf(real) !== void 0) metadata.add(path10.relative(root, real));
      };
      const repo = enclosingRepo(root);
      if (kinds[".git"] === "file" && repo) {
        addInside(repo.gitDir);
        addInside(commonDirOf(repo.gitDir));
      }
      let hooksPathInside;
      let hooksText = "";
      if (repo) {
        const common = commonDirOf(repo.gitDir);
        const configs = [path10.join(common, "config"), path10.join(repo.gitDir, "config.worktree")];
        let hp;
        for (const c of configs) hp = hooksPathOf(readIf(c) ?? "") ?? hp;
        const hooksDir = hp === void 0 ? path10.join(common, "hooks") : hp.startsWith("~/") ? path10.join(os5.homedir(), hp.slice(2)) : path10.resolve(repo.top, hp);
        if (hp !== void 0) {
          const real = canonicalPath(hooksDir);
          if (inside(root, real) && real !== root) hooksPathInside = path10.relative(root, real);
        }
        try {
          for (const f of fs9.readdirSync(hooksDir).filter((f2) => !f2.endsWith(".sample")).slice(0, 200)) {
            const text = readIf(path10.join(hooksDir, f));
            if (text !== void 0) hooksText += text.slice(0, 64 * 1024) + "\n";
          }
        } catch {
        }
      }
      const nested = /* @__PURE__ */ new Map();
      const addNested = (abs) => {
        if (!inside(root, abs) || path10.dirname(abs) === root) return;
        const rel = path10.relative(root, abs);
        if (nested.has(rel)) return;
        const missing = [];
        for (let d = abs; d !== root && kindOf(d) === void 0; d = path10.dirname(d)) missing.unshift(path10.relative(root, d));
        nested.set(rel, { rel, kind: kindOf(abs), missing });
      };
      if (repo) {
        const index = (() => {
          try {
            return fs9.readFileSync(path10.join(repo.gitDir, "index"));
          } catch {
            return void 0;
          }
        })();
        const sha256 = /objectformat\s*=\s*sha256/i.test(readIf(path10.join(commonDirOf(repo.gitDir), "config")) ?? "");
        if (index) for (const link of gitlinksOf(index, sha256 ? 32 : 20)) addNested(path10.join(repo.top, link, ".git"));
      }
      const queue = [root];
      for (let next = 0; next < queue.length && next < NESTED_WALK_LIMIT; next++) {
        const dir = queue[next];
        let entries;
        try {
          entries = fs9.readdirSync(dir, { withFileTypes: true });
        } catch {
          continue;
        }
        for (const e of entries) {
          if (e.name === ".git") {
            if (dir !== root) addNested(path10.join(dir, e.name));
          } else if (e.isDirectory()) queue.push(path10.join(dir, e.name));
        }
      }
      const ancestorKinds = {};
      for (const rel of [...nested.keys(), ...metadata]) {
        for (const a of ancestorsOf(rel)) {
          const k = kindOf(path10.join(root, a));
          if (k) ancestorKinds[a] = k;
        }
      }
      return { root, kinds, gitRepoAtRoot, gitMetadataInside: [...metadata].sort(), hooksPathInside, hooksText, nestedGit: [...nested.values()], ancestorKinds };
    };
    symlinkRefusal = (source) => new WorkspaceError({ path: source, message: `${source} is a symbolic link: mount_cwd cannot lay a read-only mount over a link (or below one) without following it, so the agent could replace it; replace the link with what it points to, or use copy_cwd` });
    workspaceLayout = (facts, workdir) => {
      const guarded = /* @__PURE__ */ new Map();
      for (const g of GUARDED) guarded.set(g.name, "always");
      if (!facts.gitRepoAtRoot) guarded.set("HEAD", "always");
      for (const h of HOOK_MANAGERS) {
        const installed = h.signature.test(facts.hooksText);
        for (const n of h.names) guarded.set(n, installed ? "always" : "if-present");
      }
      for (const n of GUARDED_IF_PRESENT) if (!guarded.has(n)) guarded.set(n, "if-present");
      if (facts.hooksPathInside !== void 0) guarded.set(facts.hooksPathInside.split(path10.sep)[0], "always");
      const mounts = [{ source: facts.root, target: workdir, readonly: false }];
      const placeholders = [];
      for (const [name, when] of guarded) {
        const kind = facts.kinds[name];
        const source = path10.join(facts.root, name);
        if (kind === "symlink") return { refusal: symlinkRefusal(source) };
        if (kind === void 0 && when === "if-present") continue;
        if (kind === void 0 || kind === "empty-dir" && when === "always") placeholders.push(source);
        mounts.push({ source, target: path10.posix.join(workdir, name), readonly: true });
      }
      const nested = /* @__PURE__ */ new Map();
      for (const n of facts.nestedGit) nested.set(n.rel, n);
      for (const rel of facts.gitMetadataInside) if (!nested.has(rel)) nested.set(rel, void 0);
      for (const rel of nested.keys()) if (guarded.has(rel.split(path10.sep)[0])) nested.delete(rel);
      const rels = [...nested.keys()];
      const coveredBy = (rel) => rels.some((o) => o !== rel && rel.startsWith(o + path10.sep));
      const selfBound = /* @__PURE__ */ new Set();
      const target = (rel) => path10.posix.join(workdir, ...rel.split(path10.sep));
      for (const [rel, n] of nested) {
        if (coveredBy(rel)) continue;
        const source = path10.join(facts.root, rel);
        for (const a of ancestorsOf(rel)) {
          const abs = path10.join(facts.root, a);
          if (facts.ancestorKinds[a] === "symlink") return { refusal: symlinkRefusal(abs) };
          if (selfBound.has(a)) continue;
          selfBound.add(a);
          mounts.push({ source: abs, target: target(a), readonly: false });
        }
        if (n?.kind === "symlink") return { refusal: symlinkRefusal(source) };
        if (n !== void 0 && (n.kind === void 0 || n.kind === "empty-dir")) placeholders.push(...n.missing.map((m) => path10.join(facts.root, m)), ...n.kind === "empty-dir" ? [source] : []);
        mounts.push({ source, target: target(rel), readonly: true });
      }
      return { layout: { mounts, placeholders: [...new Set(placeholders)] } };
    };
    caseInsensitiveAt = (root) => {
      try {
        const a = fs9.lstatSync(path10.join(root, ".git"));
        const b = fs9.lstatSync(path10.join(root, ".GIT"));
        return a.ino === b.ino && a.dev === b.dev;
      } catch {
        return false;
      }
    };
    WorkspaceRecord = Schema16.Struct({ placeholders: Schema16.Array(Schema16.String) });
    WORKSPACE_RECORD = "workspace.json";
    removePlaceholders = (placeholders) => {
      const left = [];
      const depth = (p) => p.split(path10.sep).length;
      for (const p of [...placeholders].reverse().sort((a, b) => depth(b) - depth(a))) {
        try {
          fs9.rmdirSync(p);
        } catch (e) {
          if (e.code !== "ENOENT") left.push(p);
        }
      }
      return left;
    };
    releaseWorkspace = Effect18.fn("releaseWorkspace")(function* (slug) {
      const state = yield* StateStore;
      const record2 = yield* state.readJsonIfAny(slug, WORKSPACE_RECORD, WorkspaceRecord);
      if (Option5.isNone(record2) || record2.value.placeholders.length === 0) return;
      const others = /* @__PURE__ */ new Set();
      for (const other of yield* state.list) {
        if (other === slug) continue;
        const r = yield* state.readJsonIfAny(other, WORKSPACE_RECORD, WorkspaceRecord).pipe(Effect18.orElseSucceed(() => Option5.none()));
        if (Option5.isSome(r)) for (const p of r.value.placeholders) others.add(p);
      }
      const left = removePlaceholders(record2.value.placeholders.filter((p) => !others.has(p)));
      if (left.length > 0) yield* Effect18.logWarning(`mount_cwd placeholders left in place (no longer empty, or still mounted): ${left.join(", ")}`);
      yield* state.writeJson(slug, WORKSPACE_RECORD, { placeholders: [] });
    }, Effect18.catchCause((c) => Effect18.logError("could not remove the mount_cwd placeholders", c)));
    mountWorkspace = (plan, stillHeld = Effect18.succeed(false)) => Effect18.gen(function* () {
      const state = yield* StateStore;
      const facts = yield* Effect18.try({
        try: () => inspectWorkspace(plan.cwd),
        catch: (e) => new WorkspaceError({ path: plan.cwd, message: e.message })
      });
      const result = workspaceLayout(facts, plan.workdir);
      if ("refusal" in result) return yield* result.refusal;
      const { mounts, placeholders } = result.layout;
      const record2 = (ps) => state.writeJson(plan.slug, WORKSPACE_RECORD, { placeholders: ps }).pipe(
        Effect18.mapError((e) => new WorkspaceError({ path: plan.cwd, message: e.message }))
      );
      yield* record2(placeholders);
      yield* Effect18.acquireRelease(
        Effect18.try({
          try: () => {
            const made = [];
            for (const p of placeholders) {
              try {
                fs9.mkdirSync(p, { mode: 493 });
                made.push(p);
              } catch (e) {
                if (e.code === "EEXIST") continue;
                removePlaceholders(made);
                throw new WorkspaceError({ path: p, message: e.message });
              }
            }
            if (caseInsensitiveAt(facts.root)) {
              removePlaceholders(made);
              throw new WorkspaceError({
                path: facts.root,
                message: `${facts.root} is on a case-insensitive filesystem: the agent could reach .git, bottle.yaml and the other guarded names by another spelling (.GIT) past their read-only mounts; use copy_cwd here, or a case-sensitive volume`
              });
            }
          },
          catch: (e) => e instanceof WorkspaceError ? e : new WorkspaceError({ path: plan.cwd, message: String(e) })
        }),
        () => stillHeld.pipe(Effect18.flatMap(
          (held) => held ? Effect18.logWarning(`the agent container of ${plan.slug} is still there: its mount_cwd placeholders stay until \`bottle stop ${plan.slug}\``) : releaseWorkspace(plan.slug)
        ))
      );
      return mounts;
    });
    mountRefusal = (cwd, home, stateRoot2) => {
      const dir = canonicalPath(cwd);
      const realHome = canonicalPath(home);
      const state = canonicalPath(stateRoot2);
      if (dir === path10.parse(dir).root) return "the filesystem root";
      if (inside(dir, realHome)) return dir === realHome ? "your home directory" : `a directory holding your home directory (${realHome})`;
      if (inside(dir, state) || inside(state, dir)) return `a directory holding bot-bottle's state (${stateRoot2})`;
      return void 0;
    };
  }
});

// src/programs/launch.ts
import * as fs10 from "node:fs";
import * as path11 from "node:path";
import { Cause, Effect as Effect19, Exit, Fiber as Fiber2, Redacted as Redacted5, Ref as Ref2, Schema as Schema17, Scope as Scope4 } from "effect";
import * as YAML2 from "yaml";
var LaunchFailed, RevocationFailed, MissingToken, LaunchError, AGENT_PROVISION_DIR, PROVISION_SCRIPT, provisionArgv, failedAt, backendFailedAt, bottleState, leaseBundleAddress, bottleCa, acquireBottle, attach, summarize, launch;
var init_launch = __esm({
  "src/programs/launch.ts"() {
    "use strict";
    init_claude();
    init_BottleCa();
    init_BundleProtocol();
    init_Backend();
    init_Progress();
    init_StateStore();
    init_deployKeys();
    init_subnetLease();
    init_workspace();
    LaunchFailed = class extends Schema17.TaggedClass()("LaunchFailed", { step: Schema17.String, message: Schema17.String }) {
    };
    RevocationFailed = class extends Schema17.TaggedClass()("RevocationFailed", {
      keys: Schema17.Array(Schema17.Struct({ repo: Schema17.String, id: Schema17.Number, message: Schema17.String })),
      /** What had already failed when the keys were being revoked (the launch itself): one line names both. */
      alsoFailed: Schema17.optionalKey(Schema17.String)
    }) {
    };
    MissingToken = class extends Schema17.TaggedClass()("MissingToken", { env: Schema17.String, purpose: Schema17.String }) {
    };
    LaunchError = class extends Schema17.TaggedError()("LaunchError", {
      reason: Schema17.Union([LaunchFailed, RevocationFailed, MissingToken])
    }) {
      get message() {
        const r = this.reason;
        switch (r._tag) {
          case "LaunchFailed":
            return `launch failed at ${r.step}: ${r.message}`;
          case "RevocationFailed":
            return `DEPLOY KEY REVOCATION FAILED \u2014 revoke by hand now: ${r.keys.map((k) => `${k.repo} key ${k.id} (${k.message})`).join("; ")}${r.alsoFailed ? ` \u2014 and before that: ${r.alsoFailed}` : ""}`;
          case "MissingToken":
            return `$${r.env} is not set on the host (needed for ${r.purpose}); export it and try again`;
        }
      }
    };
    AGENT_PROVISION_DIR = "/run/bottle/agent";
    PROVISION_SCRIPT = `set -eu
provision="$1"; home="$2"; workdir="$3"; prompt="$4"; skills="$5"; own_workdir="$6"
install -m 0644 "$provision/ca.pem" /usr/local/share/ca-certificates/bot-bottle.crt
# Appending is what update-ca-certificates would do for one new CA, without rehashing them all.
cat "$provision/ca.pem" >> /etc/ssl/certs/ca-certificates.crt
mkdir -p "$home/.bottle" "$workdir"
install -m 0600 "$provision/prompt.md" "$prompt"
if [ -d "$provision/skills" ]; then mkdir -p "$skills" && cp -a "$provision/skills/." "$skills/"; fi
chown -R node:node "$home"
if [ "$own_workdir" = yes ]; then chown -R node:node "$workdir"; fi
chmod 1777 /tmp
`;
    provisionArgv = (plan, skillsDir) => (
      // A mounted workspace holds the user's own files, owned as they are on the host: never chowned.
      ["sh", "-c", PROVISION_SCRIPT, "provision", AGENT_PROVISION_DIR, AGENT_HOME, plan.workdir, plan.promptPath, skillsDir, plan.mountCwd ? "no" : "yes"]
    );
    failedAt = (step) => (e) => new LaunchError({ reason: new LaunchFailed({ step, message: e.message }) });
    backendFailedAt = (step) => (e) => e._tag === "BackendError" ? failedAt(step)(e) : e;
    bottleState = Effect19.fnUntraced(function* (plan, options) {
      const state = yield* StateStore;
      const slug = plan.slug;
      if (options.fresh) yield* state.createBottleDir(slug);
      const dir = state.bottleDir(slug);
      const egress = DAEMONS.egress.stateSubdir;
      if (options.fresh || !fs10.existsSync(path11.join(hostDirOf(dir, DAEMONS.egress), "routes.yaml"))) {
        yield* state.writeFile(slug, `${egress}/routes.yaml`, YAML2.stringify({ routes: plan.egress.routes }));
      }
      yield* state.writeFile(slug, "agent/prompt.md", plan.prompt);
      const extraEgressCa = options.env["BOTTLE_EGRESS_EXTRA_CA_CERTS"];
      if (extraEgressCa) {
        yield* state.writeFile(slug, `${egress}/extra-ca.pem`, yield* Effect19.try({
          try: () => fs10.readFileSync(extraEgressCa, "utf8"),
          catch: (e) => failedAt("state")({ message: `BOTTLE_EGRESS_EXTRA_CA_CERTS: ${e.message}` })
        }), 420);
      }
      yield* Effect19.try({
        try: () => {
          for (const s of plan.skills) fs10.cpSync(s.source, path11.join(dir, "agent", "skills", s.name), { recursive: true });
        },
        catch: (e) => failedAt("state")({ message: `copying skills: ${e.message}` })
      });
      return { stateDir: dir, egressDir: hostDirOf(dir, DAEMONS.egress), agentDir: path11.join(dir, "agent") };
    });
    leaseBundleAddress = Effect19.fnUntraced(function* (plan) {
      const avoid = yield* subnetsInUse;
      return { plan: yield* leaseSubnet(plan, avoid), avoid };
    });
    bottleCa = Effect19.fnUntraced(function* (plan, egressDir) {
      const state = yield* StateStore;
      const ca = yield* ensureBottleCa(egressDir).pipe(Effect19.mapError(failedAt("ca")));
      yield* state.writeFile(plan.slug, "agent/ca.pem", ca.certPem, 420);
    });
    acquireBottle = Effect19.fnUntraced(function* (initialPlan, options, revocationFailures) {
      const backend = yield* Backend;
      for (const t of initialPlan.egress.tokens) {
        if (!options.env[t.env]) return yield* new LaunchError({ reason: new MissingToken({ env: t.env, purpose: "an egress route or deploy key" }) });
      }
      yield* reportStep("state");
      const dirs = yield* bottleState(initialPlan, options);
      yield* reportStep("lease");
      const leased = yield* leaseBundleAddress(initialPlan).pipe(Effect19.mapError(backendFailedAt("lease")));
      yield* reportStep("ca");
      const ca = yield* Effect19.forkScoped(bottleCa(leased.plan, dirs.egressDir));
      yield* reportStep("deploy-keys");
      const keys = yield* acquireDeployKeys(leased.plan, options, revocationFailures).pipe(Effect19.mapError(failedAt("deploy-keys")));
      yield* reportStep("network");
      yield* reportStep("images");
      const anyPartLeft = backend.inspect(initialPlan.slug).pipe(Effect19.map((found) => found.some((b) => b.parts.length > 0)), Effect19.orElseSucceed(() => true));
      const workspace = initialPlan.mountCwd ? mountWorkspace(initialPlan, anyPartLeft).pipe(Effect19.mapError((e) => new LaunchError({ reason: new LaunchFailed({ step: "workspace", message: e.message }) }))) : Effect19.succeed([]);
      const [{ plan, network }, images, workspaceMounts] = yield* Effect19.all([
        networkOnFreeSubnet(leased.plan, leased.avoid).pipe(Effect19.mapError(backendFailedAt("network"))),
        backend.images({ env: options.env, sources: options.images }).pipe(Effect19.mapError(failedAt("images"))),
        workspace
      ], { concurrency: 3 });
      yield* keys.saveMeta((m) => ({ ...m, agentImage: images.agent, bundleImage: images.bundle }));
      yield* Fiber2.join(ca);
      const routeTokens = new Set(plan.egress.routes.flatMap((r) => r.auth ? [r.auth.token_env] : []));
      const bundle = reportStep("bundle").pipe(Effect19.andThen(backend.bundle(plan, network, {
        image: images.bundle,
        stateDir: dirs.stateDir,
        secretEnv: Object.fromEntries([...routeTokens].map((env) => [env, Redacted5.make(options.env[env] ?? "")])),
        readyTimeoutMs: options.readyTimeoutMs ?? 3e4
      })), Effect19.mapError(failedAt("bundle")));
      const sandbox = reportStep("sandbox").pipe(Effect19.andThen(backend.sandbox(plan, network, {
        image: images.agent,
        provisionDir: dirs.agentDir,
        provisionTarget: AGENT_PROVISION_DIR,
        mounts: workspaceMounts,
        provision: provisionArgv(plan, SKILLS_DIR)
      })), Effect19.mapError(failedAt("sandbox")));
      yield* Effect19.all([bundle, sandbox], { concurrency: 2, discard: true });
      return plan;
    });
    attach = Effect19.fn("attach")(function* (plan) {
      const backend = yield* Backend;
      yield* reportStep("attach");
      return yield* backend.attach(plan, [...plan.command], { user: "agent" });
    });
    summarize = (cause) => {
      const text = (u) => u instanceof Error ? u.message : String(u);
      const failure = cause.reasons.find(Cause.isFailReason);
      if (failure) return text(failure.error);
      const defect = cause.reasons.find(Cause.isDieReason);
      return defect ? `defect: ${text(defect.defect)}` : "interrupted";
    };
    launch = Effect19.fn("launch")(function* (plan, options) {
      yield* (yield* Backend).preflight;
      const failures = yield* Ref2.make([]);
      return yield* Effect19.uninterruptibleMask(
        (restore) => Effect19.gen(function* () {
          const scope = yield* Scope4.make();
          const exit = yield* Effect19.exit(restore(Effect19.gen(function* () {
            const acquired = yield* acquireBottle(plan, options, failures).pipe(Scope4.provide(scope));
            if (options.mode === "detach") return { slug: plan.slug };
            const exitCode = yield* attach(acquired).pipe(Effect19.mapError(failedAt("attach")));
            return { slug: plan.slug, exitCode };
          })));
          if (Exit.isSuccess(exit) && options.mode === "detach") return exit.value;
          const closed = yield* Effect19.exit(Scope4.close(scope, exit));
          const failed2 = yield* Ref2.get(failures);
          const revocation = failed2.length === 0 ? void 0 : new LaunchError({
            reason: new RevocationFailed({
              keys: failed2.map((f) => ({ repo: f.key.repo, id: f.key.id, message: f.message })),
              ...Exit.isFailure(exit) ? { alsoFailed: summarize(exit.cause) } : {}
            })
          });
          if (revocation) {
            yield* Effect19.logError(revocation.message);
            const stranded = yield* keepRecord(plan, failed2.map((f) => f.key)).pipe(Effect19.exit);
            if (Exit.isFailure(stranded)) yield* Effect19.logError("could not record the deploy keys left alive", stranded.cause);
          }
          const cause = Cause.combine(
            Cause.combine(revocation ? Cause.fail(revocation) : Cause.empty, Exit.isFailure(exit) ? exit.cause : Cause.empty),
            Exit.isFailure(closed) ? closed.cause : Cause.empty
          );
          return yield* cause.reasons.length > 0 ? Effect19.failCause(cause) : exit;
        })
      );
    });
  }
});

// src/programs/bottles.ts
import { Cause as Cause2, Effect as Effect20, Exit as Exit2, Option as Option6 } from "effect";
var backendOf, backendFrom, listBottles, teardown, cleanup;
var init_bottles = __esm({
  "src/programs/bottles.ts"() {
    "use strict";
    init_Backends();
    init_BottlePlan();
    init_Backend();
    init_StateStore();
    init_deployKeys();
    init_launch();
    init_workspace();
    backendOf = Effect20.fn("backendOf")(function* (slug) {
      const state = yield* StateStore;
      const plan = yield* state.readJsonIfAny(slug, "plan.json", SavedBottlePlan).pipe(Effect20.orElseSucceed(() => Option6.none()));
      if (Option6.isSome(plan)) return plan.value.backend;
      return backendFrom(plan, yield* state.readJsonIfAny(slug, "meta.json", BottleMeta).pipe(Effect20.orElseSucceed(() => Option6.none())));
    });
    backendFrom = (plan, meta) => Option6.isSome(plan) ? plan.value.backend : Option6.match(meta, { onNone: () => "docker", onSome: (m) => m.backend });
    listBottles = Effect20.fn("listBottles")(function* () {
      const state = yield* StateStore;
      const slugs = yield* state.list;
      if (slugs.length === 0) return [];
      const bottles = yield* Effect20.forEach(slugs, (slug) => Effect20.all({
        plan: state.readJson(slug, "plan.json", SavedBottlePlan).pipe(Effect20.option),
        meta: state.readJson(slug, "meta.json", BottleMeta).pipe(Effect20.option)
      }).pipe(Effect20.map(({ plan, meta }) => ({ slug, plan, meta, backend: backendFrom(plan, meta) }))));
      const used = [...new Set(bottles.map((b) => b.backend))];
      const answers = /* @__PURE__ */ new Map();
      for (const name of used) {
        answers.set(name, yield* Backend.use((b) => b.inspect()).pipe(Effect20.provide(Backends.get(name)), Effect20.option));
      }
      return bottles.map(({ slug, plan, meta, backend }) => {
        const found = Option6.map(answers.get(backend) ?? Option6.none(), (states) => states.find((s) => s.slug === slug));
        return {
          slug,
          agent: Option6.match(plan, { onNone: () => "?", onSome: (p) => p.agent }),
          backend,
          status: Option6.match(found, { onNone: () => "unknown", onSome: (s) => s?.status ?? "stopped" }),
          createdAt: Option6.match(meta, { onNone: () => "", onSome: (m) => m.createdAt }),
          containers: Option6.match(found, { onNone: () => [], onSome: (s) => s?.parts ?? [] })
        };
      });
    });
    teardown = Effect20.fn("teardown")(function* (slug, options) {
      const state = yield* StateStore;
      const backend = yield* Backend;
      const exists = yield* state.exists(slug);
      const revocation = exists ? yield* Effect20.exit(revokeRecordedKeys(slug, options)) : Exit2.succeed([]);
      const revocationCause = Exit2.isFailure(revocation) ? revocation.cause : revocation.value.length > 0 ? Cause2.fail(new LaunchError({ reason: new RevocationFailed({ keys: revocation.value }) })) : Cause2.empty;
      const removal = yield* Effect20.exit(Effect20.gen(function* () {
        if (!exists) {
          const found = yield* backend.inspect(slug).pipe(Effect20.catch((e) => e.reason._tag === "Unavailable" ? Effect20.succeed([]) : Effect20.fail(e)));
          if (found.length === 0) return yield* new StateError({ reason: new StateNotFound({ slug }) });
        }
        const { leftovers, holdsAddress } = yield* backend.remove(slug);
        if (!holdsAddress) yield* state.releaseLeases(slug);
        if (!holdsAddress && exists) yield* releaseWorkspace(slug);
        return leftovers;
      }));
      const cause = Cause2.combine(revocationCause, Exit2.isFailure(removal) ? removal.cause : Cause2.empty);
      if (cause.reasons.length > 0 || Exit2.isFailure(removal)) return yield* Effect20.failCause(cause);
      if (options.purge && removal.value.length === 0) yield* state.removeBottle(slug);
      return removal.value;
    });
    cleanup = Effect20.fn("cleanup")(function* (options) {
      const state = yield* StateStore;
      const slugs = new Set(yield* state.list);
      const removed = [];
      for (const name of backendNames) {
        removed.push(...yield* Backend.use((b) => b.removeOrphans(slugs, options)).pipe(Effect20.provide(Backends.get(name))));
      }
      const leases = (yield* state.allLeases).filter((l) => !slugs.has(l.slug));
      for (const slug of new Set(leases.map((l) => l.slug))) {
        if (!options.dryRun) yield* state.releaseLeases(slug);
      }
      for (const l of leases) removed.push(`lease ${l.pool}#${l.index} (${l.slug})`);
      return removed;
    });
  }
});

// src/programs/prepare.ts
import { createHash as createHash3 } from "node:crypto";
import * as fs11 from "node:fs";
import * as os6 from "node:os";
import * as path12 from "node:path";
import { Effect as Effect21 } from "effect";
import * as YAML3 from "yaml";
var defaultSlug, isPromptPath, readPromptText, expandHome, SKILL_MAX_FILES, SKILL_MAX_BYTES, SCANNED_FILE_MAX, skillRefusal, prepare;
var init_prepare = __esm({
  "src/programs/prepare.ts"() {
    "use strict";
    init_claude();
    init_Bundle();
    init_BottlePlan();
    init_ManifestError();
    init_SecretPatterns();
    init_StateStore();
    init_bottleNames();
    init_loadManifest();
    init_workspace();
    defaultSlug = (agent, cwd) => `${agent}-${createHash3("sha256").update(path12.resolve(cwd)).digest("hex").slice(0, 6)}`;
    isPromptPath = (prompt) => {
      const p = prompt.trim();
      return p !== "" && !/\s/.test(p) && (/\.md$/i.test(p) || p.includes("/"));
    };
    readPromptText = (text) => {
      const secret = findSecretLines(text)[0];
      if (secret) {
        return { problem: { line: secret.line, message: `looks like a literal secret (${secret.pattern.name}) in the prompt file; the prompt is handed to the agent: remove it` } };
      }
      if (!/^---[ \t]*\r?\n/.test(text)) return { prompt: text };
      const m = text.match(/^---[ \t]*\r?\n(?:([\s\S]*?)\r?\n)?---[ \t]*(?:\r?\n|$)/);
      if (!m) return { problem: { line: 1, message: "front matter opened with --- is never closed (expected a line ---)" } };
      const doc = YAML3.parseDocument(m[1] ?? "", { uniqueKeys: true, prettyErrors: true });
      const error = doc.errors[0];
      if (error) {
        const { path: _, ...problem } = yamlProblem(error, doc, { subject: "front matter", lineOffset: 1 });
        return { problem: { ...problem, message: `front matter: ${problem.message}` } };
      }
      if (doc.contents !== null && !YAML3.isMap(doc.contents) && !(YAML3.isScalar(doc.contents) && doc.contents.value === null)) {
        return { problem: { line: 2, message: "front matter: expected a mapping of keys (name: ..., description: ...)" } };
      }
      return { prompt: text.slice(m[0].length) };
    };
    expandHome = (p) => p.startsWith("~/") ? path12.join(os6.homedir(), p.slice(2)) : p;
    SKILL_MAX_FILES = 500;
    SKILL_MAX_BYTES = 20 * 1024 * 1024;
    SCANNED_FILE_MAX = 1024 * 1024;
    skillRefusal = (dir) => {
      const real = fs11.realpathSync(dir);
      const home = fs11.realpathSync(os6.homedir());
      if (real === path12.parse(real).root || home === real || home.startsWith(real + path12.sep)) {
        return `refusing to copy ${dir} into the sandbox as a skill: it is ${real === path12.parse(real).root ? "the filesystem root" : "your home directory or holds it"}`;
      }
      let files = 0;
      let bytes = 0;
      const stack = [real];
      while (stack.length > 0) {
        const d = stack.pop();
        for (const e of fs11.readdirSync(d, { withFileTypes: true })) {
          const p = path12.join(d, e.name);
          if (e.isDirectory()) stack.push(p);
          else if (e.isFile()) {
            files++;
            const size = fs11.statSync(p).size;
            bytes += size;
            if (files > SKILL_MAX_FILES || bytes > SKILL_MAX_BYTES) {
              return `refusing to copy ${dir} into the sandbox as a skill: more than ${SKILL_MAX_FILES} files or ${SKILL_MAX_BYTES / 1024 / 1024} MB (a skill is a few instructions and scripts)`;
            }
            if (size <= SCANNED_FILE_MAX) {
              const hit = findSecretLines(fs11.readFileSync(p, "latin1"))[0];
              if (hit) return `refusing to copy ${dir} into the sandbox as a skill: ${p}:${hit.line} looks like a credential (${hit.pattern.name})`;
            }
          }
        }
      }
      return void 0;
    };
    prepare = Effect21.fn("prepare")(function* (input) {
      const { loaded } = input;
      const { manifest } = loaded;
      const fail = (keyPath, pathText, message) => {
        const pos = loaded.locate(keyPath);
        return new ManifestError({ file: loaded.file, problems: [{ ...pos ? { line: pos.line, column: pos.column } : {}, path: pathText, message }] });
      };
      const agent = manifest.agents[input.agent];
      if (!agent) {
        const known = Object.keys(manifest.agents);
        return yield* fail(["agents"], "agents", `no agent named "${input.agent}" (defined: ${known.length ? known.join(", ") : "none"})`);
      }
      const bottle = manifest.bottles[agent.bottle];
      const backend = input.backend ?? bottle.backend ?? "docker";
      const slug = input.name ?? defaultSlug(input.agent, input.cwd);
      if (!/^[a-z][a-z0-9-]{0,62}$/.test(slug)) {
        return yield* fail([], "--name", `invalid bottle name "${slug}": lower-case letters, digits and '-', starting with a letter`);
      }
      let prompt = agent.prompt ?? "";
      if (agent.prompt !== void 0 && isPromptPath(agent.prompt)) {
        const file = path12.resolve(loaded.dir, expandHome(agent.prompt.trim()));
        const text = yield* Effect21.try({
          try: () => fs11.readFileSync(file, "utf8"),
          catch: (e) => fail(["agents", input.agent, "prompt"], `agents.${input.agent}.prompt`, `prompt file ${file} cannot be read (${e.code ?? String(e)}); a prompt is read from a file when it is one word ending in .md or containing a /`)
        });
        const read = readPromptText(text);
        if ("problem" in read) {
          return yield* new ManifestError({ file, problems: [{ ...read.problem, path: `agents.${input.agent}.prompt` }] });
        }
        prompt = read.prompt;
      }
      const skills = [];
      for (const [i, s] of (agent.skills ?? []).entries()) {
        const dir = path12.resolve(loaded.dir, expandHome(s));
        const at = ["agents", input.agent, "skills", i];
        const where = `agents.${input.agent}.skills[${i}]`;
        const ok = fs11.existsSync(dir) && fs11.statSync(dir).isDirectory();
        if (!ok) return yield* fail(at, where, `skill directory ${dir} does not exist`);
        const refusal = skillRefusal(dir);
        if (refusal) return yield* fail(at, where, refusal);
        skills.push({ name: path12.basename(dir), source: dir });
      }
      if (bottle.workspace?.mount_cwd) {
        const cwd = path12.resolve(input.cwd);
        const state2 = yield* StateStore;
        const why = mountRefusal(cwd, os6.homedir(), state2.root);
        if (why) {
          return yield* fail(["bottles", agent.bottle, "workspace", "mount_cwd"], `bottles.${agent.bottle}.workspace.mount_cwd`, `refusing to mount ${cwd} read-write into the agent: it is ${why}; run from a project directory`);
        }
      }
      const routes = bottle.egress?.routes ?? [];
      const roles = new Set(routes.flatMap((r) => r.roles ?? []));
      const tokenEnvs = [.../* @__PURE__ */ new Set([
        ...routes.flatMap((r) => r.auth ? [r.auth.token_env] : []),
        ...(bottle.git?.upstreams ?? []).flatMap((u) => u.deploy_key ? [u.deploy_key.token_env] : [])
      ])];
      const state = yield* StateStore;
      const subnetIndex = yield* state.peekLease(SUBNET_POOL, SUBNET_POOL_SIZE, slug);
      const { subnet, bundleIp } = subnetFor(subnetIndex);
      const names = bottleNames(state.root, slug);
      const supervise = bottle.supervise ?? false;
      const upstreams = bottle.git?.upstreams ?? [];
      const daemons = ["egress", ...upstreams.length > 0 ? ["git-gate"] : [], ...supervise ? ["supervise"] : []];
      const template = claude;
      const workdir = bottle.workspace?.workdir ?? "/workspace";
      const plan = {
        version: 2,
        slug,
        agent: input.agent,
        ...agent.label !== void 0 ? { label: agent.label } : {},
        ...agent.color !== void 0 ? { color: agent.color } : {},
        bottle: agent.bottle,
        backend,
        provider: agent.provider ?? "claude",
        manifestFile: loaded.file,
        cwd: path12.resolve(input.cwd),
        command: [...template.command(agent.command ?? template.defaultCommand, { hasPrompt: prompt.trim() !== "", supervise })],
        env: {
          ...template.env(roles),
          ...proxyEnv(bundleIp),
          NO_PROXY: "localhost,127.0.0.1,::1",
          no_proxy: "localhost,127.0.0.1,::1",
          ...bottle.env,
          ...agent.env
        },
        workdir,
        copyCwd: bottle.workspace?.copy_cwd ?? false,
        ...bottle.workspace?.mount_cwd ? { mountCwd: true } : {},
        prompt,
        promptPath: PROMPT_PATH,
        skills,
        network: { subnetIndex, subnet, bundleIp },
        runtime: runtimeFor[backend](names.base),
        egress: { routes, tokens: tokenEnvs.map((env) => ({ env, present: !!input.env[env] })) },
        git: { upstreams },
        supervise,
        daemons,
        resources: { ...bottle.resources?.cpus !== void 0 ? { cpus: bottle.resources.cpus } : {}, ...bottle.resources?.memory !== void 0 ? { memory: bottle.resources.memory } : {} }
      };
      return plan;
    });
  }
});

// src/programs/resolvePlan.ts
import { Effect as Effect22, Option as Option7, Schema as Schema18 } from "effect";
var resolvePlan;
var init_resolvePlan = __esm({
  "src/programs/resolvePlan.ts"() {
    "use strict";
    init_Manifest();
    init_ManifestError();
    init_loadManifest();
    init_prepare();
    resolvePlan = Effect22.fn("resolvePlan")(function* (input) {
      const env = process.env;
      const cwd = process.cwd();
      let backend = Option7.getOrUndefined(input.backend);
      if (backend === void 0 && env["BOTTLE_BACKEND"]) {
        const decoded = Schema18.decodeUnknownOption(Backend2)(env["BOTTLE_BACKEND"]);
        if (Option7.isNone(decoded)) {
          return yield* new ManifestError({ file: "$BOTTLE_BACKEND", problems: [{ path: "", message: `expected docker or smolmachines, got "${env["BOTTLE_BACKEND"]}"` }] });
        }
        backend = decoded.value;
      }
      const loaded = yield* loadManifest({ cwd, manifestPath: Option7.getOrUndefined(input.manifest), env });
      const plan = yield* prepare({ loaded, agent: input.agent, cwd, env, backend, name: Option7.getOrUndefined(input.name) });
      return { loaded, plan };
    });
  }
});

// src/schema/AuditLog.ts
import * as fsp from "node:fs/promises";
import * as path13 from "node:path";
import { Effect as Effect23, Schema as Schema19 } from "effect";
var AuditDecision, AuditEntry, AuditUnreadable, decodeEntry, readAudit;
var init_AuditLog = __esm({
  "src/schema/AuditLog.ts"() {
    "use strict";
    AuditDecision = Schema19.Literals(["allow", "deny", "dlp-block", "error"]);
    AuditEntry = Schema19.Struct({
      time: Schema19.String,
      bottle: Schema19.String,
      method: Schema19.String,
      host: Schema19.String,
      path: Schema19.String,
      status: Schema19.Number,
      bytes_in: Schema19.Number,
      bytes_out: Schema19.Number,
      duration_ms: Schema19.Number,
      decision: AuditDecision,
      rule: Schema19.String,
      reason: Schema19.optionalKey(Schema19.String),
      /** How many refusals the line stands for (rate-limited refusals, see admission.ts); 1 when absent. */
      count: Schema19.optionalKey(Schema19.Number)
    });
    AuditUnreadable = class extends Schema19.TaggedError()("AuditUnreadable", { path: Schema19.String, detail: Schema19.String }) {
      get message() {
        return `cannot read egress audit log ${this.path}: ${this.detail}`;
      }
    };
    decodeEntry = Schema19.decodeUnknownOption(Schema19.fromJsonString(AuditEntry));
    readAudit = Effect23.fn("readAudit")(function* (stateDir) {
      const file = path13.join(stateDir, "audit.log");
      const files = yield* Effect23.tryPromise({
        try: async () => {
          const names = await fsp.readdir(stateDir);
          const rotated = names.map((n) => /^audit\.log\.(\d+)$/.exec(n)).filter((m) => m !== null).map((m) => Number(m[1])).sort((a, b) => b - a).map((i) => `${file}.${i}`);
          return names.includes("audit.log") ? [...rotated, file] : rotated;
        },
        catch: (cause) => new AuditUnreadable({ path: file, detail: cause instanceof Error ? cause.message : String(cause) })
      });
      const out = [];
      for (const f of files) {
        const text = yield* Effect23.tryPromise({
          try: () => fsp.readFile(f, "utf8"),
          catch: (cause) => new AuditUnreadable({ path: f, detail: cause instanceof Error ? cause.message : String(cause) })
        });
        for (const line of text.split("\n")) {
          if (line.length === 0) continue;
          const entry = decodeEntry(line);
          if (entry._tag === "Some") out.push(entry.value);
        }
      }
      return out;
    });
  }
});

// src/dash/feed.ts
import * as path14 from "node:path";
import { Cause as Cause3, Context as Context7, Effect as Effect24, Fiber as Fiber3, Option as Option8, Schema as Schema20 } from "effect";
var messageOf, AuditLine, decodeAudit, decodePush, makeDashApi;
var init_feed = __esm({
  "src/dash/feed.ts"() {
    "use strict";
    init_render();
    init_Backends();
    init_bottles();
    init_grants();
    init_launch();
    init_loadManifest();
    init_resolvePlan();
    init_AuditLog();
    init_BottlePlan();
    init_BundleProtocol();
    init_Backend();
    init_ProcessRunner();
    init_Progress();
    init_StateStore();
    messageOf = (cause) => {
      const errors = cause.reasons.filter(Cause3.isFailReason).map((r) => r.error);
      if (errors.length > 0) return errors.map((e) => e.message ?? String(e)).join("; ");
      return Cause3.pretty(cause).split("\n")[0] ?? "failed";
    };
    AuditLine = Schema20.decodeUnknownOption(Schema20.fromJsonString(AuditEntry));
    decodeAudit = (line) => Option8.getOrUndefined(AuditLine(line));
    decodePush = (line) => {
      let o;
      try {
        o = JSON.parse(line);
      } catch {
        return void 0;
      }
      if (typeof o !== "object" || o === null) return void 0;
      const r = o;
      const str = (k) => typeof r[k] === "string" ? r[k] : void 0;
      const what = [str("kind"), str("type"), str("event"), str("op"), str("action")].filter((x) => x !== void 0).join(" ");
      const refs = Array.isArray(r["refs"]) ? r["refs"].map((x) => typeof x === "string" ? x : typeof x === "object" && x !== null && typeof x["ref"] === "string" ? x["ref"] : "").filter(Boolean).join(" ") : str("ref") ?? "";
      if (!/push/i.test(what) && refs === "") return void 0;
      const outcome = str("decision") ?? str("outcome") ?? str("result") ?? str("status") ?? (typeof r["ok"] === "boolean" ? r["ok"] ? "ok" : "refused" : "");
      return { time: str("time") ?? str("ts") ?? "", ref: refs, outcome };
    };
    makeDashApi = (context, options) => {
      const run = (effect) => Effect24.runPromiseExit(Effect24.provideContext(effect, context)).then((exit) => {
        if (exit._tag === "Success") return exit.value;
        throw new Error(messageOf(exit.cause));
      });
      const state = Context7.get(context, StateStore);
      const labels = /* @__PURE__ */ new Map();
      const files = (slug) => {
        const dir = state.bottleDir(slug);
        return {
          stateDir: dir,
          egressAudit: path14.join(hostDirOf(dir, DAEMONS.egress), "audit.log"),
          gitGateDir: hostDirOf(dir, DAEMONS["git-gate"]),
          superviseDir: hostDirOf(dir, DAEMONS.supervise)
        };
      };
      const labelOf = (row) => Effect24.gen(function* () {
        const known = labels.get(row.slug);
        if (known) return known;
        const plan = yield* state.readJsonIfAny(row.slug, "plan.json", SavedBottlePlan).pipe(Effect24.orElseSucceed(() => Option8.none()));
        const found = Option8.match(plan, {
          onNone: () => ({ label: row.agent }),
          onSome: (p) => ({ label: p.label ?? p.agent, color: p.color })
        });
        if (Option8.isSome(plan)) labels.set(row.slug, found);
        return found;
      });
      const preflight = (agent) => Effect24.gen(function* () {
        const { loaded, plan } = yield* resolvePlan({ agent, manifest: Option8.none(), backend: Option8.none(), name: Option8.none() });
        const problems = [];
        const refusal = yield* Backend.use((b) => b.preflight).pipe(Effect24.provide(Backends.get(plan.backend)), Effect24.flip, Effect24.option);
        if (Option8.isSome(refusal)) problems.push(refusal.value.message);
        const missingDaemons = notBuiltDaemons(plan.daemons);
        if (missingDaemons.length > 0) problems.push(`this bottle needs the ${missingDaemons.join(" and ")} daemon${missingDaemons.length > 1 ? "s" : ""}, which ${missingDaemons.length > 1 ? "are" : "is"} not built yet in this version of bot-bottle`);
        const missing = plan.egress.tokens.filter((t) => !t.present);
        if (missing.length > 0) problems.push(`${missing.map((t) => `$${t.env}`).join(", ")} ${missing.length > 1 ? "are" : "is"} not set on this host; the bottle's routes inject ${missing.length > 1 ? "them" : "it"}`);
        if (yield* state.exists(plan.slug)) problems.push(`bottle ${plan.slug} already exists: \`bottle resume ${plan.slug}\` to attach, or stop it first`);
        const grants = yield* pendingGrants(plan);
        return { plan, manifestFile: loaded.file, text: renderPlan(plan, loaded.file, grants), grants, problems };
      });
      return {
        bottlesDir: path14.dirname(state.bottleDir("x")),
        files,
        rows: () => run(Effect24.gen(function* () {
          const rows = yield* listBottles();
          return yield* Effect24.forEach(rows, (row) => Effect24.map(labelOf(row), (l) => ({ ...row, ...l })));
        })),
        agents: () => run(Effect24.gen(function* () {
          const loaded = yield* loadManifest({ cwd: options.cwd, env: options.env });
          const agents = Object.entries(loaded.manifest.agents).map(([name, a]) => ({ name, label: a.label ?? name, color: a.color }));
          return { manifestFile: loaded.file, agents };
        })),
        preflight: (agent) => run(preflight(agent)),
        launch: (pre, onProgress) => run(Effect24.gen(function* () {
          if (pre.problems.length > 0) return yield* Effect24.fail(new Error(pre.problems.join("; ")));
          if (pre.grants.length > 0) yield* approveGrants(pre.grants, pre.manifestFile);
          yield* launch(pre.plan, { mode: "detach", fresh: true, env: options.env }).pipe(
            Effect24.provide(Backends.get(pre.plan.backend)),
            Effect24.provideService(Progress, { report: (event) => Effect24.sync(() => onProgress(event)) })
          );
        })),
        stop: (slug) => run(Effect24.gen(function* () {
          const backend = yield* backendOf(slug);
          const exit = yield* teardown(slug, { purge: false, env: options.env }).pipe(Effect24.provide(Backends.get(backend)), Effect24.exit);
          labels.delete(slug);
          if (exit._tag === "Success") return { _tag: "Stopped", leftovers: exit.value };
          const errors = exit.cause.reasons.filter(Cause3.isFailReason).map((r) => r.error);
          if (errors.length === 0) return yield* Effect24.failCause(exit.cause);
          const revocation = errors.filter((e) => e._tag === "LaunchError" && e.reason._tag === "RevocationFailed").map((e) => e.message);
          const other = errors.filter((e) => !(e._tag === "LaunchError" && e.reason._tag === "RevocationFailed")).map((e) => e.message);
          return { _tag: "Failed", revocation, other };
        })),
        approvals: (slug) => run(options.queue.list(slug)),
        answer: (slug, id, decision, note) => run(options.queue.answer(slug, id, decision, note)),
        openTerminal: (slug) => run(Effect24.gen(function* () {
          const resume = [...options.bottleCommand, "resume", slug];
          if (!options.env["TMUX"]) return `run \`bottle resume ${slug}\` in a terminal to use the agent`;
          const runner = yield* ProcessRunner;
          yield* runner.run(["tmux", "new-window", "-n", slug, ...resume]);
          return `opened ${slug} in a new tmux window`;
        })),
        watchEngine: (onChange) => {
          const fibers = backendNames.map(
            (name) => Effect24.runFork(Effect24.provideContext(
              Backend.use((b) => b.changes ? b.changes(onChange) : Effect24.never).pipe(
                Effect24.provide(Backends.get(name)),
                // The engine away (restarting, unreachable): ask again a little later.
                Effect24.catch(() => Effect24.sleep("5 seconds")),
                Effect24.andThen(Effect24.sync(onChange)),
                Effect24.forever
              ),
              context
            ))
          );
          return () => fibers.forEach((f) => Effect24.runFork(Fiber3.interrupt(f)));
        }
      };
    };
  }
});

// src/dash/components/Modal.tsx
import { Box as Box4, Text as Text5 } from "ink";
import { jsx as jsx4, jsxs as jsxs4 } from "react/jsx-runtime";
var Frame, AgentPicker, isCredentialLine, wrapPlan, PlanModal, ProgressModal, ConfirmStop, NotePrompt;
var init_Modal = __esm({
  "src/dash/components/Modal.tsx"() {
    "use strict";
    init_progress();
    init_feed();
    init_model();
    init_theme();
    Frame = (props) => {
      const border = useBorderTint();
      return /* @__PURE__ */ jsxs4(Box4, { flexDirection: "column", borderStyle: "double", ...border(props.danger ? "red" : "cyan"), width: props.width, paddingX: 1, children: [
        /* @__PURE__ */ jsx4(Text5, { bold: true, children: props.title }),
        props.children
      ] });
    };
    AgentPicker = (props) => {
      const tint = useTint();
      return /* @__PURE__ */ jsxs4(Frame, { title: "Start a bottle: pick an agent", width: props.width, children: [
        /* @__PURE__ */ jsx4(Text5, { dimColor: true, wrap: "truncate", children: props.manifestFile ?? "reading the manifest\u2026" }),
        props.error ? /* @__PURE__ */ jsx4(Text5, { ...tint("red"), wrap: "wrap", children: props.error }) : null,
        (props.agents ?? []).map((a, i) => /* @__PURE__ */ jsxs4(Text5, { inverse: i === props.selected, children: [
          i === props.selected ? "> " : "  ",
          a.name,
          " ",
          /* @__PURE__ */ jsx4(Text5, { ...tint(a.color), children: a.label !== a.name ? `(${a.label})` : "" })
        ] }, a.name)),
        /* @__PURE__ */ jsx4(Text5, { dimColor: true, children: "enter: show the plan \xB7 esc: cancel" })
      ] });
    };
    isCredentialLine = (line) => /injects |CREDENTIAL GRANT|UNRESTRICTED TOKEN ROUTE|deploy key/.test(line);
    wrapPlan = (text, width) => {
      const out = [];
      const w = Math.max(10, width);
      for (const line of text.split("\n")) {
        const credential = isCredentialLine(line);
        if (line.length === 0) out.push({ text: "", credential });
        for (let i = 0; i < line.length; i += w) out.push({ text: (i > 0 ? " " : "") + line.slice(i, i + w - (i > 0 ? 1 : 0)), credential });
      }
      return out;
    };
    PlanModal = (props) => {
      const tint = useTint();
      const { pre } = props;
      const inner = props.width - 4;
      const lines2 = wrapPlan(pre.text, inner);
      const head = (pre.grants.length > 0 ? pre.grants.length + 1 : 0) + (pre.problems.length > 0 ? pre.problems.length + 1 : 0);
      const room = Math.max(3, props.height - 5 - head);
      const first = Math.min(Math.max(0, props.scroll), Math.max(0, lines2.length - room));
      return /* @__PURE__ */ jsxs4(Frame, { title: `Start ${pre.plan.slug}? (the plan \`bottle plan ${pre.plan.agent}\` prints)`, width: props.width, danger: pre.grants.length > 0, children: [
        pre.grants.length > 0 ? /* @__PURE__ */ jsxs4(Box4, { flexDirection: "column", children: [
          /* @__PURE__ */ jsx4(Text5, { ...tint("red"), bold: true, children: fit(`!! CREDENTIAL GRANT${pre.grants.length > 1 ? "S" : ""} \u2014 confirming approves:`, inner) }),
          pre.grants.map((g) => /* @__PURE__ */ jsx4(Text5, { ...tint("red"), bold: true, children: fit(`!!   ${describeGrant(g)}`, inner) }, `${g.host} ${g.token_env}`))
        ] }) : null,
        pre.problems.length > 0 ? /* @__PURE__ */ jsxs4(Box4, { flexDirection: "column", children: [
          /* @__PURE__ */ jsx4(Text5, { ...tint("red"), bold: true, children: "cannot start:" }),
          pre.problems.map((p, i) => /* @__PURE__ */ jsx4(Text5, { ...tint("red"), wrap: "truncate", children: fit(`  ${p}`, inner) }, i))
        ] }) : null,
        lines2.slice(first, first + room).map((l, i) => /* @__PURE__ */ jsxs4(Text5, { ...tint(l.credential ? "yellow" : void 0), bold: l.credential, children: [
          l.credential ? "\u258C" : " ",
          l.text
        ] }, first + i)),
        /* @__PURE__ */ jsxs4(Text5, { dimColor: true, children: [
          `${first + Math.min(room, lines2.length)}/${lines2.length} lines \xB7 `,
          pre.problems.length > 0 ? "esc: close" : `y: ${pre.grants.length > 0 ? "approve and " : ""}start \xB7 n/esc: cancel \xB7 \u2191\u2193 scroll`
        ] })
      ] });
    };
    ProgressModal = (props) => {
      const tint = useTint();
      const { view } = props;
      const inner = props.width - 4;
      return /* @__PURE__ */ jsxs4(Frame, { title: `Launching ${view.slug}`, width: props.width, danger: view.state === "failed", children: [
        view.steps.map((s, i) => {
          const current = i === view.steps.length - 1 && view.state === "running";
          return /* @__PURE__ */ jsxs4(Text5, { ...tint(current ? "cyan" : void 0), children: [
            current ? "\u2026 " : "\u2713 ",
            LABELS[s]
          ] }, s);
        }),
        view.state === "running" && view.build ? /* @__PURE__ */ jsx4(Text5, { dimColor: true, children: fit(`  ${view.build}`, inner) }) : null,
        view.state !== "running" ? /* @__PURE__ */ jsx4(Text5, { ...tint(view.state === "failed" ? "red" : "green"), wrap: "wrap", children: view.message }) : null,
        /* @__PURE__ */ jsx4(Text5, { dimColor: true, children: view.state === "running" ? "nothing to press: the launch goes on" : "enter: close" })
      ] });
    };
    ConfirmStop = (props) => /* @__PURE__ */ jsxs4(Frame, { title: `Stop ${props.slug}?`, width: props.width, danger: true, children: [
      /* @__PURE__ */ jsx4(Text5, { wrap: "wrap", children: "Its containers and networks are removed and its deploy keys revoked; its state is kept (`bottle resume` restarts it)." }),
      /* @__PURE__ */ jsx4(Text5, { dimColor: true, children: "y: stop \xB7 n/esc: cancel" })
    ] });
    NotePrompt = (props) => /* @__PURE__ */ jsxs4(Frame, { title: `${props.decision === "approve" ? "Approve" : "Deny"}: ${fit(props.title, props.width - 14)}`, width: props.width, danger: props.decision === "deny", children: [
      /* @__PURE__ */ jsxs4(Text5, { children: [
        "note (optional): ",
        props.note,
        /* @__PURE__ */ jsx4(Text5, { inverse: true, children: " " })
      ] }),
      /* @__PURE__ */ jsx4(Text5, { dimColor: true, children: "enter: send \xB7 esc: cancel" })
    ] });
  }
});

// src/dash/components/App.tsx
var App_exports = {};
__export(App_exports, {
  App: () => App
});
import { Box as Box5, Text as Text6, useApp, useInput, useWindowSize } from "ink";
import { useEffect, useState, useSyncExternalStore } from "react";
import { jsx as jsx5, jsxs as jsxs5 } from "react/jsx-runtime";
var App;
var init_App = __esm({
  "src/dash/components/App.tsx"() {
    "use strict";
    init_render();
    init_Alerts();
    init_BottleList();
    init_Detail();
    init_HelpLine();
    init_theme();
    init_Modal();
    App = (props) => {
      const { store, api } = props;
      const snap = useSyncExternalStore(store.subscribe, store.getSnapshot);
      const win = useWindowSize();
      const columns = Math.max(40, props.size?.columns ?? win.columns ?? 80);
      const rows = Math.max(10, props.size?.rows ?? win.rows ?? 24);
      const width = columns - 1;
      const app = useApp();
      const tint = useTint();
      const [selected, setSelected] = useState(0);
      const [view, setView] = useState("list");
      const [approval, setApproval] = useState(0);
      const [modal, setModal] = useState(void 0);
      const [info, setInfo] = useState("");
      const row = snap.rows[Math.min(selected, snap.rows.length - 1)];
      const detail = row ? store.detail(row.slug) : void 0;
      useEffect(() => {
        if (selected >= snap.rows.length && snap.rows.length > 0) setSelected(snap.rows.length - 1);
        if (view === "detail" && !row) setView("list");
      }, [snap.rows.length, selected, view, row]);
      const fail = (what) => (e) => store.alert("error", `${what}: ${e.message}`);
      const openStart = () => {
        setModal({ k: "pick", selected: 0 });
        api.agents().then(
          (r) => setModal((m) => m?.k === "pick" ? { ...m, manifestFile: r.manifestFile, agents: r.agents } : m),
          (e) => setModal((m) => m?.k === "pick" ? { ...m, error: e.message } : m)
        );
      };
      const showPlan = (agent) => {
        setModal({ k: "planning", agent });
        api.preflight(agent).then(
          (pre) => setModal((m) => m?.k === "planning" ? { k: "plan", pre, scroll: 0 } : m),
          (e) => setModal((m) => m?.k === "planning" ? { k: "pick", selected: 0, error: e.message } : m)
        );
      };
      const startLaunch = (pre) => {
        const slug = pre.plan.slug;
        let v = { slug, steps: [], build: "", state: "running", message: "" };
        const show = () => setModal((m) => m?.k === "launch" && m.view.slug === slug ? { k: "launch", view: v } : m);
        setModal({ k: "launch", view: v });
        api.launch(pre, (event) => {
          v = event._tag === "Step" ? { ...v, steps: v.steps.includes(event.step) ? v.steps : [...v.steps, event.step], build: "" } : { ...v, build: event.line };
          show();
        }).then(
          async () => {
            void store.refreshList();
            const said = await api.openTerminal(slug).catch((e) => `could not open its terminal (${e.message}): run \`bottle resume ${slug}\``);
            v = { ...v, state: "done", message: `bottle ${slug} is running. ${said}` };
            show();
          },
          (e) => {
            v = { ...v, state: "failed", message: e.message };
            show();
            void store.refreshList();
          }
        );
      };
      const stop = (slug) => {
        setInfo(`stopping ${slug}\u2026`);
        api.stop(slug).then((out) => {
          if (out._tag === "Stopped") {
            setInfo(out.leftovers.length > 0 ? `${slug} stopped; left behind: ${out.leftovers.join(", ")}` : `${slug} stopped`);
          } else {
            setInfo("");
            for (const r of out.revocation) store.alert("revocation", `${slug}: ${r}`);
            for (const o of out.other) store.alert("error", `stopping ${slug}: ${o}`);
          }
          void store.refreshList();
        }, fail(`stopping ${slug}`));
      };
      const answer2 = (m) => {
        setModal(void 0);
        api.answer(m.slug, m.id, m.decision, m.note.trim() === "" ? void 0 : m.note.trim()).then(
          (said) => {
            setInfo(said);
            void store.refreshBottle(m.slug);
          },
          fail(`answering ${m.id}`)
        );
      };
      const openTerminal = (slug) => api.openTerminal(slug).then(setInfo, fail(`opening ${slug}`));
      useInput((input, key) => {
        if (modal) {
          switch (modal.k) {
            case "pick": {
              const n = modal.agents?.length ?? 0;
              if (key.escape || input === "q") setModal(void 0);
              else if (key.upArrow || input === "k") setModal({ ...modal, selected: Math.max(0, modal.selected - 1) });
              else if (key.downArrow || input === "j") setModal({ ...modal, selected: Math.min(n - 1, modal.selected + 1) });
              else if (key.return && n > 0) showPlan(modal.agents[modal.selected].name);
              return;
            }
            case "planning":
              if (key.escape) setModal(void 0);
              return;
            case "plan":
              if (key.escape || input === "n" || input === "q") setModal(void 0);
              else if (key.upArrow || input === "k") setModal({ ...modal, scroll: Math.max(0, modal.scroll - 1) });
              else if (key.downArrow || input === "j") setModal({ ...modal, scroll: modal.scroll + 1 });
              else if (input === "y" && modal.pre.problems.length === 0) startLaunch(modal.pre);
              return;
            case "launch":
              if (modal.view.state !== "running" && (key.return || key.escape)) setModal(void 0);
              return;
            case "stop":
              if (input === "y") {
                setModal(void 0);
                stop(modal.slug);
              } else if (input === "n" || key.escape || key.return) setModal(void 0);
              return;
            case "note":
              if (key.escape) setModal(void 0);
              else if (key.return) answer2(modal);
              else if (key.backspace || key.delete) setModal({ ...modal, note: modal.note.slice(0, -1) });
              else if (input && !key.ctrl && !key.meta && modal.note.length < 500) setModal({ ...modal, note: modal.note + input.replace(/[\u0000-\u001f\u007f]/g, "") });
              return;
          }
        }
        if (input === "q" || key.ctrl && input === "c") {
          app.exit();
          return;
        }
        if (input === "c") return store.dismiss();
        if (input === "s") return openStart();
        if (!row) return;
        if (input === "x") return setModal({ k: "stop", slug: row.slug });
        if (input === "o") return void openTerminal(row.slug);
        if (view === "list") {
          if (key.upArrow || input === "k") setSelected((s) => Math.max(0, s - 1));
          else if (key.downArrow || input === "j") setSelected((s) => Math.min(snap.rows.length - 1, s + 1));
          else if (key.return) {
            setView("detail");
            setApproval(0);
            void store.refreshBottle(row.slug);
          }
          return;
        }
        const approvals = detail?.approvals ?? [];
        if (key.escape || key.leftArrow) setView("list");
        else if (key.upArrow || input === "k") setApproval((a) => Math.max(0, a - 1));
        else if (key.downArrow || input === "j") setApproval((a) => Math.min(approvals.length - 1, a + 1));
        else if (input === "a" || input === "d") {
          const target = approvals[Math.min(approval, approvals.length - 1)];
          if (target?.status === "pending") setModal({ k: "note", slug: row.slug, id: target.id, title: visible(target.title), decision: input === "a" ? "approve" : "deny", note: "" });
          else setInfo(target ? `${target.id} is already ${target.status}` : "no approval request selected");
        }
      });
      const pending = snap.rows.reduce((n, r) => n + r.pending, 0);
      const alertRows = snap.alerts.length === 0 ? 0 : Math.min(3, snap.alerts.length) + 3;
      const body = rows - 3 - alertRows;
      const helpMode = modal ? modal.k === "note" ? "note" : modal.k === "launch" ? "progress" : "modal" : view;
      return /* @__PURE__ */ jsxs5(Box5, { flexDirection: "column", width: columns, height: rows, children: [
        /* @__PURE__ */ jsxs5(Text6, { bold: true, wrap: "truncate", children: [
          `bottle dash \xB7 ${snap.rows.length} bottle${snap.rows.length === 1 ? "" : "s"} \xB7 ${snap.rows.filter((r) => r.status === "running").length} running \xB7 `,
          /* @__PURE__ */ jsx5(Text6, { ...tint(pending > 0 ? "yellow" : void 0), children: `${pending} pending approval${pending === 1 ? "" : "s"}` })
        ] }),
        /* @__PURE__ */ jsx5(Alerts, { alerts: snap.alerts, width }),
        /* @__PURE__ */ jsx5(Box5, { flexDirection: "column", height: body, overflow: "hidden", children: modal?.k === "pick" ? /* @__PURE__ */ jsx5(AgentPicker, { manifestFile: modal.manifestFile, agents: modal.agents, selected: modal.selected, error: modal.error, width }) : modal?.k === "planning" ? /* @__PURE__ */ jsx5(Text6, { children: `planning ${modal.agent}\u2026 (nothing is built or started before you confirm)` }) : modal?.k === "plan" ? /* @__PURE__ */ jsx5(PlanModal, { pre: modal.pre, scroll: modal.scroll, width, height: body }) : modal?.k === "launch" ? /* @__PURE__ */ jsx5(ProgressModal, { view: modal.view, width }) : modal?.k === "stop" ? /* @__PURE__ */ jsx5(ConfirmStop, { slug: modal.slug, width }) : modal?.k === "note" ? /* @__PURE__ */ jsx5(NotePrompt, { decision: modal.decision, title: modal.title, note: modal.note, width }) : view === "detail" && row && detail ? /* @__PURE__ */ jsx5(Detail, { row, detail, selected: approval, now: snap.now, width, height: body }) : /* @__PURE__ */ jsx5(BottleList, { rows: snap.rows, selected, now: snap.now, height: body, loaded: snap.loaded }) }),
        /* @__PURE__ */ jsx5(Text6, { wrap: "truncate", children: info }),
        /* @__PURE__ */ jsx5(HelpLine, { mode: helpMode, width })
      ] });
    };
  }
});

// src/schema/Approval.ts
import { Schema as Schema21 } from "effect";
var LIMITS, DEFAULT_EXPIRY_SECONDS, APPROVAL_ID, bounded, ApprovalId, ApprovalKind, ApprovalStatus, ApprovalRoute, EgressTarget, ApprovalRequest, ApprovalAnswer, Approval, QUEUE_SUBDIRS, REQUESTS_DIR, ANSWERS_DIR, statusOf2, approvalOf;
var init_Approval = __esm({
  "src/schema/Approval.ts"() {
    "use strict";
    LIMITS = {
      title: 200,
      details: 8e3,
      requester: 100,
      note: 2e3,
      host: 253,
      method: 16,
      path: 2048,
      /** A request or answer file larger than this is not read (bytes). */
      fileBytes: 64 * 1024,
      /** Pending requests one daemon keeps at most; beyond it, new requests are refused. */
      pendingPerDaemon: 200
    };
    DEFAULT_EXPIRY_SECONDS = 30 * 60;
    APPROVAL_ID = /^[a-z2-9]{12}$/u;
    bounded = (max) => Schema21.String.pipe(Schema21.check(Schema21.isMaxLength(max)));
    ApprovalId = Schema21.String.pipe(
      Schema21.check(Schema21.isPattern(APPROVAL_ID, { message: "expected an approval id (12 characters of a-z and 2-9)" }))
    );
    ApprovalKind = Schema21.Literals(["tool", "permission", "egress"]);
    ApprovalStatus = Schema21.Literals(["pending", "approved", "denied", "expired"]);
    ApprovalRoute = Schema21.Literals(["once", "session"]);
    EgressTarget = Schema21.Struct({
      host: bounded(LIMITS.host),
      port: Schema21.Int.pipe(Schema21.check(Schema21.isBetween({ minimum: 1, maximum: 65535 }))),
      method: bounded(LIMITS.method),
      path: bounded(LIMITS.path)
    });
    ApprovalRequest = Schema21.Struct({
      id: ApprovalId,
      kind: ApprovalKind,
      title: bounded(LIMITS.title),
      details: bounded(LIMITS.details),
      requester: bounded(LIMITS.requester),
      createdAt: Schema21.String,
      expiresAt: Schema21.String,
      egress: Schema21.optionalKey(EgressTarget)
    });
    ApprovalAnswer = Schema21.Struct({
      id: ApprovalId,
      status: Schema21.Literals(["approved", "denied"]),
      answeredAt: Schema21.String,
      note: Schema21.optionalKey(bounded(LIMITS.note)),
      route: Schema21.optionalKey(ApprovalRoute)
    });
    Approval = Schema21.Struct({
      id: ApprovalId,
      bottle: Schema21.String,
      kind: ApprovalKind,
      title: Schema21.String,
      details: Schema21.String,
      requester: Schema21.String,
      createdAt: Schema21.String,
      expiresAt: Schema21.String,
      status: ApprovalStatus,
      answeredAt: Schema21.optionalKey(Schema21.String),
      note: Schema21.optionalKey(Schema21.String),
      route: Schema21.optionalKey(ApprovalRoute),
      host: Schema21.optionalKey(Schema21.String),
      port: Schema21.optionalKey(Schema21.Number),
      method: Schema21.optionalKey(Schema21.String),
      path: Schema21.optionalKey(Schema21.String)
    });
    QUEUE_SUBDIRS = ["supervise", "egress"];
    REQUESTS_DIR = "requests";
    ANSWERS_DIR = "answers";
    statusOf2 = (request, answer2, now) => {
      const expires = Date.parse(request.expiresAt);
      if (answer2 !== void 0) {
        const at = Date.parse(answer2.answeredAt);
        if (!Number.isFinite(expires) || !Number.isFinite(at) || at <= expires) return answer2.status;
        return "expired";
      }
      return !Number.isFinite(expires) || now >= expires ? "expired" : "pending";
    };
    approvalOf = (bottle, request, answer2, now) => {
      const status = statusOf2(request, answer2, now);
      const counted = answer2 !== void 0 && status === answer2.status;
      return {
        id: request.id,
        bottle,
        kind: request.kind,
        title: request.title,
        details: request.details,
        requester: request.requester,
        createdAt: request.createdAt,
        expiresAt: request.expiresAt,
        status,
        ...counted ? { answeredAt: answer2.answeredAt } : {},
        ...counted && answer2.note !== void 0 ? { note: answer2.note } : {},
        ...counted && answer2.route !== void 0 ? { route: answer2.route } : {},
        ...request.egress ?? {}
      };
    };
  }
});

// src/schema/ApprovalQueue.ts
import * as fs12 from "node:fs";
import * as path15 from "node:path";
import { Schema as Schema22 } from "effect";
var decodeRequest, decodeAnswer, FILE_NAME, randomSuffix, readSmallFile, parseWith, requestFile, answerFile, checkId, readRequest, readAnswer, writeRequest, writeAnswer, listQueue;
var init_ApprovalQueue = __esm({
  "src/schema/ApprovalQueue.ts"() {
    "use strict";
    init_Approval();
    decodeRequest = Schema22.decodeUnknownExit(ApprovalRequest, { onExcessProperty: "ignore" });
    decodeAnswer = Schema22.decodeUnknownExit(ApprovalAnswer, { onExcessProperty: "ignore" });
    FILE_NAME = /^([a-z2-9]{12})\.json$/u;
    randomSuffix = () => `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
    readSmallFile = (file, maxBytes = LIMITS.fileBytes) => {
      let fd;
      try {
        fd = fs12.openSync(file, fs12.constants.O_RDONLY | fs12.constants.O_NOFOLLOW | fs12.constants.O_NONBLOCK);
      } catch {
        return void 0;
      }
      try {
        const st = fs12.fstatSync(fd);
        if (!st.isFile() || st.size > maxBytes) return void 0;
        const buf = Buffer.alloc(st.size);
        let off = 0;
        while (off < st.size) {
          const n = fs12.readSync(fd, buf, off, st.size - off, off);
          if (n <= 0) break;
          off += n;
        }
        return buf.subarray(0, off).toString("utf8");
      } catch {
        return void 0;
      } finally {
        fs12.closeSync(fd);
      }
    };
    parseWith = (decode, text) => {
      if (text === void 0) return void 0;
      try {
        const exit = decode(JSON.parse(text));
        return exit._tag === "Success" ? exit.value : void 0;
      } catch {
        return void 0;
      }
    };
    requestFile = (queueDir, id) => path15.join(queueDir, REQUESTS_DIR, `${id}.json`);
    answerFile = (queueDir, id) => path15.join(queueDir, ANSWERS_DIR, `${id}.json`);
    checkId = (id) => {
      if (!APPROVAL_ID.test(id)) throw new Error(`not an approval id: ${JSON.stringify(id.slice(0, 40))}`);
    };
    readRequest = (queueDir, id) => {
      if (!APPROVAL_ID.test(id)) return void 0;
      const r = parseWith(decodeRequest, readSmallFile(requestFile(queueDir, id)));
      return r !== void 0 && r.id === id ? r : void 0;
    };
    readAnswer = (queueDir, id) => {
      if (!APPROVAL_ID.test(id)) return void 0;
      const a = parseWith(decodeAnswer, readSmallFile(answerFile(queueDir, id)));
      return a !== void 0 && a.id === id ? a : void 0;
    };
    writeRequest = (queueDir, request) => {
      checkId(request.id);
      const dir = path15.join(queueDir, REQUESTS_DIR);
      fs12.mkdirSync(dir, { recursive: true, mode: 448 });
      const file = path15.join(dir, `${request.id}.json`);
      const tmp = path15.join(dir, `.tmp-${randomSuffix()}`);
      fs12.writeFileSync(tmp, `${JSON.stringify(request)}
`, { mode: 384, flag: "wx" });
      try {
        fs12.renameSync(tmp, file);
      } catch (e) {
        fs12.rmSync(tmp, { force: true });
        throw e;
      }
    };
    writeAnswer = (queueDir, answer2) => {
      checkId(answer2.id);
      const dir = path15.join(queueDir, ANSWERS_DIR);
      fs12.mkdirSync(dir, { recursive: true, mode: 448 });
      const file = path15.join(dir, `${answer2.id}.json`);
      const tmp = path15.join(dir, `.tmp-${randomSuffix()}`);
      fs12.writeFileSync(tmp, `${JSON.stringify(answer2)}
`, { mode: 384, flag: "wx" });
      try {
        fs12.linkSync(tmp, file);
        return { written: true };
      } catch (e) {
        if (e.code === "EEXIST") return { written: false };
        throw e;
      } finally {
        fs12.rmSync(tmp, { force: true });
      }
    };
    listQueue = (queueDir) => {
      let names;
      try {
        names = fs12.readdirSync(path15.join(queueDir, REQUESTS_DIR));
      } catch {
        return { entries: [], skipped: [] };
      }
      const entries = [];
      const skipped = [];
      for (const name of names) {
        const m = FILE_NAME.exec(name);
        if (!m) continue;
        const request = readRequest(queueDir, m[1]);
        if (request === void 0) {
          skipped.push(name);
          continue;
        }
        entries.push({ request, answer: readAnswer(queueDir, request.id) });
      }
      return { entries, skipped };
    };
  }
});

// src/programs/approvals.ts
import * as path16 from "node:path";
import { Duration, Effect as Effect25, Queue, Schema as Schema23, Stream as Stream2 } from "effect";
var ApprovalNotFound, ApprovalBadArgument, ApprovalExpired, ApprovalError, io2, queueDirsOf, byQueueOrder, snapshot, bottlesOf, list, locate, get, answer, queueDirs;
var init_approvals = __esm({
  "src/programs/approvals.ts"() {
    "use strict";
    init_Approval();
    init_ApprovalQueue();
    init_StateStore();
    ApprovalNotFound = class extends Schema23.TaggedClass()("NotFound", { id: Schema23.String }) {
    };
    ApprovalBadArgument = class extends Schema23.TaggedClass()("BadArgument", { message: Schema23.String }) {
    };
    ApprovalExpired = class extends Schema23.TaggedClass()("Expired", { id: Schema23.String }) {
    };
    ApprovalError = class extends Schema23.TaggedError()("ApprovalError", {
      reason: Schema23.Union([ApprovalNotFound, ApprovalBadArgument, ApprovalExpired])
    }) {
      get message() {
        const r = this.reason;
        switch (r._tag) {
          case "NotFound":
            return `no approval request ${JSON.stringify(r.id)} (see \`bottle approvals\`)`;
          case "BadArgument":
            return r.message;
          case "Expired":
            return `approval request ${r.id} has expired: the agent must ask again`;
        }
      }
    };
    io2 = (p) => (e) => new StateError({ reason: new StateIo({ path: p, message: e.message }) });
    queueDirsOf = (state, slug) => QUEUE_SUBDIRS.map((sub) => path16.join(state.bottleDir(slug), sub));
    byQueueOrder = (a, b) => {
      const pa = a.status === "pending" ? 0 : 1;
      const pb = b.status === "pending" ? 0 : 1;
      if (pa !== pb) return pa - pb;
      const ta = Date.parse(a.createdAt);
      const tb = Date.parse(b.createdAt);
      if (ta !== tb) return ta - tb;
      return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    };
    snapshot = (state, slugs, now) => slugs.flatMap((slug) => queueDirsOf(state, slug).flatMap((dir) => listQueue(dir).entries.map((e) => approvalOf(slug, e.request, e.answer, now))));
    bottlesOf = Effect25.fnUntraced(function* (bottle) {
      const state = yield* StateStore;
      if (bottle === void 0) return yield* state.list;
      if (!(yield* state.exists(bottle))) return yield* new StateError({ reason: new StateNotFound({ slug: bottle }) });
      return [bottle];
    });
    list = Effect25.fn("approvals.list")(function* (bottle) {
      const state = yield* StateStore;
      const slugs = yield* bottlesOf(bottle);
      const now = Date.now();
      return yield* Effect25.try({ try: () => snapshot(state, slugs, now).sort(byQueueOrder), catch: io2(state.root) });
    });
    locate = Effect25.fnUntraced(function* (id) {
      if (!APPROVAL_ID.test(id)) {
        return yield* new ApprovalError({ reason: new ApprovalBadArgument({ message: `expected an approval id (12 characters of a-z and 2-9, see \`bottle approvals\`), got ${JSON.stringify(id.slice(0, 40))}` }) });
      }
      const state = yield* StateStore;
      for (const slug of yield* state.list) {
        for (const dir of queueDirsOf(state, slug)) {
          if (readRequest(dir, id) !== void 0) return { slug, dir };
        }
      }
      return yield* new ApprovalError({ reason: new ApprovalNotFound({ id }) });
    });
    get = Effect25.fn("approvals.get")(function* (id) {
      const { slug, dir } = yield* locate(id);
      const request = readRequest(dir, id);
      if (request === void 0) return yield* new ApprovalError({ reason: new ApprovalNotFound({ id }) });
      return approvalOf(slug, request, readAnswer(dir, id), Date.now());
    });
    answer = Effect25.fn("approvals.answer")(function* (id, decision, options = {}) {
      const { slug, dir } = yield* locate(id);
      const request = readRequest(dir, id);
      if (request === void 0) return yield* new ApprovalError({ reason: new ApprovalNotFound({ id }) });
      const note = options.note;
      if (note !== void 0 && note.length > LIMITS.note) {
        return yield* new ApprovalError({ reason: new ApprovalBadArgument({ message: `--note: at most ${LIMITS.note} characters, got ${note.length}` }) });
      }
      if (options.route !== void 0 && (request.kind !== "egress" || decision !== "approve")) {
        return yield* new ApprovalError({
          reason: new ApprovalBadArgument({ message: `--route applies to approving an egress request; ${id} is a ${request.kind} request${decision === "deny" ? " being denied" : ""}` })
        });
      }
      const now = Date.now();
      const before = approvalOf(slug, request, readAnswer(dir, id), now);
      if (before.status === "expired") return yield* new ApprovalError({ reason: new ApprovalExpired({ id }) });
      if (before.status !== "pending") return { outcome: "already", approval: before };
      const route = request.kind === "egress" && decision === "approve" ? options.route ?? "once" : void 0;
      const { written } = yield* Effect25.try({
        try: () => writeAnswer(dir, {
          id,
          status: decision === "approve" ? "approved" : "denied",
          answeredAt: new Date(now).toISOString(),
          ...note !== void 0 && note !== "" ? { note } : {},
          ...route !== void 0 ? { route } : {}
        }),
        catch: io2(dir)
      });
      const after = approvalOf(slug, request, readAnswer(dir, id), Date.now());
      return { outcome: written ? "answered" : "already", approval: after };
    });
    queueDirs = Effect25.fnUntraced(function* (slug) {
      const state = yield* StateStore;
      return queueDirsOf(state, slug);
    });
  }
});

// src/dash/approvals.ts
import { Effect as Effect26 } from "effect";
var lineOf, approvalQueue;
var init_approvals2 = __esm({
  "src/dash/approvals.ts"() {
    "use strict";
    init_approvals();
    lineOf = (a) => ({
      id: a.id,
      slug: a.bottle,
      kind: a.kind,
      // An egress request is its target; the daemon's title may say less.
      title: a.kind === "egress" && a.host !== void 0 ? `${a.method ?? "?"} ${a.host}:${a.port ?? 443}${a.path ?? ""}` : a.title,
      status: a.status,
      createdAt: a.createdAt,
      note: a.note
    });
    approvalQueue = {
      list: (slug) => list(slug).pipe(Effect26.map((all) => all.map(lineOf))),
      answer: (_slug, id, decision, note) => answer(id, decision, { note }).pipe(
        Effect26.map(
          (r) => r.outcome === "answered" ? `${decision === "approve" ? "approved" : "denied"} ${id}${r.approval.route ? ` (route: ${r.approval.route})` : ""}` : `${id} was already ${r.approval.status}: the first answer stands`
        )
      )
    };
  }
});

// src/dash/tail.ts
import * as fs13 from "node:fs";
import * as fsp2 from "node:fs/promises";
var LineTail, keepNewest;
var init_tail = __esm({
  "src/dash/tail.ts"() {
    "use strict";
    LineTail = class {
      offset = -1;
      ino = -1;
      partial = "";
      file;
      decode;
      options;
      constructor(file, decode, options = {}) {
        this.file = file;
        this.decode = decode;
        this.options = options;
      }
      /** The entries added since the last call (oldest first); none when the file is absent. */
      async read() {
        let handle;
        try {
          handle = await fsp2.open(this.file, fs13.constants.O_RDONLY | fs13.constants.O_NOFOLLOW | fs13.constants.O_NONBLOCK);
        } catch {
          return [];
        }
        try {
          const st = await handle.stat();
          if (!st.isFile()) return [];
          if (st.ino !== this.ino || st.size < this.offset) {
            const initial = this.options.initialBytes ?? 1 << 20;
            this.offset = this.ino === -1 ? Math.max(0, st.size - initial) : 0;
            this.partial = "";
            this.ino = st.ino;
            if (this.offset > 0) this.partial = "\0skip";
          }
          if (st.size === this.offset) return [];
          const length = Math.min(st.size - this.offset, this.options.maxChunk ?? 4 << 20);
          const buf = Buffer.alloc(length);
          const { bytesRead } = await handle.read(buf, 0, length, this.offset);
          this.offset += bytesRead;
          const text = this.partial + buf.toString("utf8", 0, bytesRead);
          const lines2 = text.split("\n");
          this.partial = lines2.pop() ?? "";
          if (lines2[0]?.startsWith("\0skip")) lines2.shift();
          const out = [];
          for (const line of lines2) {
            if (line.length === 0) continue;
            const a = this.decode(line);
            if (a !== void 0) out.push(a);
          }
          return out;
        } finally {
          await handle.close();
        }
      }
    };
    keepNewest = (into, added, max) => {
      for (const a of added) into.push(a);
      if (into.length > max) into.splice(0, into.length - max);
    };
  }
});

// src/dash/store.ts
import * as fs14 from "node:fs";
import * as fsp3 from "node:fs/promises";
import * as path17 from "node:path";
var KEEP, TICK_MS, DEBOUNCE_MS, DashStore;
var init_store = __esm({
  "src/dash/store.ts"() {
    "use strict";
    init_feed();
    init_model();
    init_tail();
    KEEP = 500;
    TICK_MS = 5e3;
    DEBOUNCE_MS = 100;
    DashStore = class {
      api;
      options;
      base = [];
      feeds = /* @__PURE__ */ new Map();
      listeners = /* @__PURE__ */ new Set();
      snapshot;
      alerts = [];
      alertSeq = 0;
      listRunning;
      listQueued = false;
      bottleRunning = /* @__PURE__ */ new Map();
      bottleQueued = /* @__PURE__ */ new Set();
      timers = /* @__PURE__ */ new Map();
      rootWatcher;
      tickTimer;
      stopEngine;
      publishPending = false;
      listedPending = false;
      constructor(api, options) {
        this.api = api;
        this.options = options;
        this.snapshot = { rows: [], loaded: false, alerts: [], now: this.now() };
      }
      now() {
        return this.options.now?.() ?? Date.now();
      }
      subscribe = (listener) => {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
      };
      getSnapshot = () => this.snapshot;
      /** First load, then the watchers and the tick. */
      async start() {
        if (this.options.watch) {
          try {
            fs14.mkdirSync(this.api.bottlesDir, { recursive: true, mode: 448 });
            this.rootWatcher = fs14.watch(this.api.bottlesDir, () => this.later("list", () => this.refreshList()));
            this.rootWatcher.on("error", () => void 0);
          } catch (e) {
            this.alert("error", `cannot watch ${this.api.bottlesDir}: ${e.message}`);
          }
          this.stopEngine = this.api.watchEngine(() => this.later("list", () => this.refreshList()));
          this.tickTimer = setInterval(() => this.tick(), TICK_MS);
          this.tickTimer.unref();
        }
        await this.refreshList();
        this.publishNow(true);
      }
      stop() {
        this.rootWatcher?.close();
        this.stopEngine?.();
        if (this.tickTimer) clearInterval(this.tickTimer);
        for (const t of this.timers.values()) clearTimeout(t);
        for (const f of this.feeds.values()) f.watchers.forEach((w) => w.close());
      }
      /** Debounced: many file events in a burst are one refresh. */
      later(key, fn) {
        if (this.timers.has(key)) return;
        const t = setTimeout(() => {
          this.timers.delete(key);
          void fn();
        }, DEBOUNCE_MS);
        t.unref?.();
        this.timers.set(key, t);
      }
      /** Re-lists the bottles (`listBottles`); coalesced. */
      refreshList() {
        if (this.listRunning) {
          this.listQueued = true;
          return this.listRunning;
        }
        this.listRunning = (async () => {
          try {
            this.base = await this.api.rows();
            const slugs = new Set(this.base.map((r) => r.slug));
            for (const [slug, feed] of this.feeds) {
              if (!slugs.has(slug)) {
                feed.watchers.forEach((w) => w.close());
                this.feeds.delete(slug);
              }
            }
            await Promise.all(this.base.filter((r) => !this.feeds.has(r.slug)).map((r) => this.refreshBottle(r.slug)));
          } catch (e) {
            this.alert("error", `listing bottles: ${e.message}`);
          } finally {
            this.listRunning = void 0;
            this.publish(true);
            if (this.listQueued) {
              this.listQueued = false;
              void this.refreshList();
            }
          }
        })();
        return this.listRunning;
      }
      feedOf(slug) {
        let feed = this.feeds.get(slug);
        if (!feed) {
          const files = this.api.files(slug);
          feed = { audit: new LineTail(files.egressAudit, decodeAudit), egress: [], pushTails: /* @__PURE__ */ new Map(), pushes: [], pushCount: 0, approvals: [], watchers: [], watched: /* @__PURE__ */ new Set() };
          this.feeds.set(slug, feed);
        }
        return feed;
      }
      /**
       * Watches the bottle's dir (a daemon's subdir appearing) and its daemon subdirs that exist by
       * now (egress and supervise with their queue subdirs: recursive). Called on every refresh of
       * the bottle, so a subdir created later is watched from then on.
       */
      ensureWatchers(slug, feed) {
        if (!this.options.watch) return;
        const files = this.api.files(slug);
        const dirs = [
          [files.stateDir, false],
          [path17.dirname(files.egressAudit), true],
          [files.gitGateDir, false],
          [files.superviseDir, true]
        ];
        for (const [dir, recursive] of dirs) {
          if (feed.watched.has(dir)) continue;
          try {
            const w = fs14.watch(dir, { recursive }, () => this.later(`bottle:${slug}`, () => this.refreshBottle(slug)));
            w.on("error", () => void 0);
            feed.watchers.push(w);
            feed.watched.add(dir);
          } catch {
          }
        }
      }
      /** Reads what is new in a bottle's files and its approvals; coalesced per bottle. */
      refreshBottle(slug) {
        const running = this.bottleRunning.get(slug);
        if (running) {
          this.bottleQueued.add(slug);
          return running;
        }
        const p = (async () => {
          const feed = this.feedOf(slug);
          const files = this.api.files(slug);
          this.ensureWatchers(slug, feed);
          try {
            keepNewest(feed.egress, await feed.audit.read(), KEEP);
            let names = [];
            try {
              names = (await fsp3.readdir(files.gitGateDir)).filter((n) => /\.(log|jsonl)$/.test(n) && /audit|push/.test(n));
            } catch {
              names = [];
            }
            for (const n of names) {
              let tail = feed.pushTails.get(n);
              if (!tail) {
                tail = new LineTail(path17.join(files.gitGateDir, n), decodePush);
                feed.pushTails.set(n, tail);
              }
              const added = await tail.read();
              feed.pushCount += added.length;
              keepNewest(feed.pushes, added, KEEP);
            }
            feed.approvals = await this.api.approvals(slug);
          } catch (e) {
            this.alert("error", `reading bottle ${slug}: ${e.message}`);
          } finally {
            this.bottleRunning.delete(slug);
            this.publish(false);
            if (this.bottleQueued.delete(slug)) void this.refreshBottle(slug);
          }
        })();
        this.bottleRunning.set(slug, p);
        return p;
      }
      /** Slides the window: counters and ages as of now. */
      tick() {
        this.publish(false);
      }
      detail(slug) {
        const feed = this.feeds.get(slug);
        return { egress: feed?.egress ?? [], pushes: feed?.pushes ?? [], approvals: feed?.approvals ?? [] };
      }
      alert(kind, text) {
        this.alerts = [...this.alerts, { id: ++this.alertSeq, kind, text }];
        this.publish(false);
      }
      /** Dismisses the oldest alert (revocation alerts first: they matter most). */
      dismiss() {
        const i = this.alerts.findIndex((a) => a.kind === "revocation");
        this.alerts = this.alerts.filter((_, j) => j !== (i >= 0 ? i : 0));
        this.publish(false);
      }
      /**
       * A new snapshot for the screen. Several changes in one turn (20 bottles refreshed together)
       * are one snapshot, hence one draw.
       */
      publish(listed) {
        this.listedPending ||= listed;
        if (this.publishPending) return;
        this.publishPending = true;
        setImmediate(() => {
          this.publishPending = false;
          const l = this.listedPending;
          this.listedPending = false;
          this.publishNow(l);
        });
      }
      publishNow(listed) {
        const now = this.now();
        const rows = this.base.map((r) => {
          const feed = this.feeds.get(r.slug);
          return {
            ...r,
            egress: countEgress(feed?.egress ?? [], now),
            pushes: feed?.pushCount ?? 0,
            pending: feed?.approvals.filter((a) => a.status === "pending").length ?? 0
          };
        });
        this.snapshot = { rows, loaded: this.snapshot.loaded || listed, alerts: this.alerts, now };
        for (const l of this.listeners) l();
      }
    };
  }
});

// test/layers/Recorder.ts
import { Context as Context8, Effect as Effect27, Layer as Layer7, Ref as Ref3 } from "effect";
var Recorder, untilBlocked;
var init_Recorder = __esm({
  "test/layers/Recorder.ts"() {
    "use strict";
    Recorder = class _Recorder extends Context8.Service()("test/Recorder") {
      static layer = Layer7.effect(_Recorder, Effect27.gen(function* () {
        const events = yield* Ref3.make([]);
        const blockOn = yield* Ref3.make(void 0);
        const record2 = (event) => Ref3.update(events, (xs) => [...xs, event]);
        return _Recorder.of({
          events,
          record: record2,
          blockOn,
          gate: (event) => Ref3.get(blockOn).pipe(Effect27.flatMap((b) => b === event ? record2(`blocked ${event}`).pipe(Effect27.andThen(Effect27.never)) : Effect27.void))
        });
      }));
    };
    untilBlocked = Effect27.gen(function* () {
      const rec = yield* Recorder;
      for (let i = 0; i < 1e5; i++) {
        if ((yield* Ref3.get(rec.events)).some((e) => e.startsWith("blocked "))) return;
        yield* Effect27.yieldNow;
      }
      return yield* Effect27.die(new Error(`never reached the blocked step; events: ${(yield* Ref3.get(rec.events)).join(", ")}`));
    });
  }
});

// test/layers/Backend.ts
import { Effect as Effect28, Layer as Layer8 } from "effect";
var unexpected, layerTest;
var init_Backend2 = __esm({
  "test/layers/Backend.ts"() {
    "use strict";
    init_Backend();
    init_Recorder();
    unexpected = (name) => () => Effect28.die(new Error(`fake Backend: unexpected call to ${name}`));
    layerTest = (options = {}) => Layer8.effect(Backend, Effect28.gen(function* () {
      const rec = yield* Recorder;
      const scoped = (part, slug) => rec.gate(`${part} ${slug}`).pipe(
        Effect28.andThen(Effect28.acquireRelease(rec.record(`acquire ${part} ${slug}`), () => rec.record(`release ${part} ${slug}`).pipe(
          Effect28.andThen(options.failRelease?.includes(part) ? Effect28.die(new Error(`release ${part} ${slug}: boom`)) : Effect28.void)
        )))
      );
      return Backend.of({
        name: "fake",
        preflight: Effect28.void,
        images: () => Effect28.succeed({ agent: "fake/agent:1", bundle: "fake/bundle:1" }),
        addressesInUse: Effect28.succeed(options.addressesInUse ?? []),
        network: (plan) => options.takenMeanwhile?.includes(plan.network.subnet) ? rec.record(`refused network ${plan.slug} ${plan.network.subnet}`).pipe(Effect28.andThen(Effect28.fail(new BackendError({
          backend: "fake",
          reason: new BackendAddressTaken({ subnet: plan.network.subnet, message: `${plan.network.subnet} is taken` })
        })))) : scoped("network", plan.slug).pipe(Effect28.as({ complete: Effect28.void })),
        bundle: (plan, _network, spec) => Effect28.sync(() => options.bundles?.push(spec)).pipe(
          Effect28.andThen(scoped("bundle", plan.slug)),
          Effect28.andThen(
            options.bundleFailure === void 0 ? Effect28.void : Effect28.fail(new BackendError({ backend: "fake", reason: new BackendFailed({ message: options.bundleFailure }) }))
          )
        ),
        sandbox: (plan, _network, spec) => Effect28.sync(() => options.sandboxes?.push(spec)).pipe(
          Effect28.andThen(scoped("sandbox", plan.slug)),
          Effect28.andThen(rec.gate(`provision ${plan.slug}`)),
          Effect28.andThen(rec.record(`provision ${plan.slug}`))
        ),
        exec: unexpected("exec"),
        attach: (plan) => rec.gate(`attach ${plan.slug}`).pipe(Effect28.andThen(rec.record(`attach ${plan.slug}`)), Effect28.as(options.attachExitCode ?? 0)),
        inspect: unexpected("inspect"),
        logs: unexpected("logs"),
        remove: unexpected("remove"),
        removeOrphans: unexpected("removeOrphans"),
        ...options.stub
      });
    }));
  }
});

// test/layers/GitHost.ts
import { Effect as Effect29, Layer as Layer9, Ref as Ref4 } from "effect";
var layerTest2;
var init_GitHost2 = __esm({
  "test/layers/GitHost.ts"() {
    "use strict";
    init_GitHost();
    init_Recorder();
    layerTest2 = (options = {}) => Layer9.effect(GitHost, Effect29.gen(function* () {
      const rec = yield* Recorder;
      const next = yield* Ref4.make(100);
      const revokeDeployKey = (ref) => rec.record(`release deploy-key ${ref.repo}#${ref.id}`).pipe(
        Effect29.andThen(
          options.failRevoke ? Effect29.fail(new GitHostError({ reason: new GitHostRequestFailed({ method: "DELETE", url: `${ref.apiUrl}/keys/${ref.id}`, status: 502, body: "bad gateway" }) })) : Effect29.void
        )
      );
      const createDeployKey = (spec) => Effect29.sync(() => options.onCreate?.(spec)).pipe(
        Effect29.andThen(Ref4.getAndUpdate(next, (n) => n + 1)),
        Effect29.tap((id) => rec.record(`acquire deploy-key ${spec.repo}#${id}`)),
        Effect29.map((id) => ({ provider: spec.provider, apiUrl: spec.apiUrl, repo: spec.repo, id, title: spec.title }))
      );
      return GitHost.of({
        createDeployKey,
        revokeDeployKey,
        deployKey: (spec, onRevokeFailure) => rec.gate(`deploy-key ${spec.repo}`).pipe(Effect29.andThen(Effect29.acquireRelease(createDeployKey(spec), (ref) => revokeDeployKey(ref).pipe(Effect29.catch((e) => onRevokeFailure(ref, e))))))
      });
    }));
  }
});

// test/dash.fixtures.ts
var dash_fixtures_exports = {};
__export(dash_fixtures_exports, {
  MANIFEST: () => MANIFEST,
  makeFixture: () => makeFixture,
  until: () => until
});
import * as fs15 from "node:fs";
import * as os7 from "node:os";
import * as path18 from "node:path";
import { Effect as Effect30, Exit as Exit3, Layer as Layer10, LayerMap as LayerMap2, Scope as Scope5 } from "effect";
var MANIFEST, makeFixture, until;
var init_dash_fixtures = __esm({
  "test/dash.fixtures.ts"() {
    "use strict";
    init_approvals2();
    init_feed();
    init_store();
    init_Backends();
    init_ProcessRunner2();
    init_SmolmachinesBackend();
    init_StateStore2();
    init_loadManifest();
    init_prepare();
    init_ApprovalQueue();
    init_StateStore();
    init_Backend2();
    init_GitHost2();
    init_Recorder();
    MANIFEST = `
agents:
  coder:
    bottle: box
    label: Coder
    color: magenta
  scout:
    bottle: open
    label: Scout
    color: cyan
bottles:
  box:
    egress:
      routes:
        - host: api.anthropic.com
  open:
    egress:
      routes:
        - host: files.example.net
          auth: { token_env: DASH_TEST_TOKEN }
`;
    makeFixture = async (options = {}) => {
      const root = fs15.mkdtempSync(path18.join(os7.tmpdir(), "bb-dash-state-"));
      const cwd = fs15.mkdtempSync(path18.join(os7.tmpdir(), "bb-dash-cwd-"));
      fs15.writeFileSync(path18.join(cwd, "bottle.yaml"), MANIFEST);
      const running = /* @__PURE__ */ new Set();
      const fakeBackend = layerTest({
        stub: {
          inspect: (slug) => Effect30.sync(() => [...running].filter((s) => slug === void 0 || s === slug).map((s) => ({ slug: s, status: "running", parts: [`bottle-${s}-agent`, `bottle-${s}-bundle`] }))),
          // A launched bottle runs from its bundle on (detach mode keeps it).
          bundle: (plan) => Effect30.sync(() => void running.add(plan.slug)),
          remove: (slug) => Effect30.sync(() => {
            running.delete(slug);
            return { leftovers: [], holdsAddress: false };
          })
        }
      });
      const state = Layer10.succeed(StateStore, make3(root));
      const backends = Layer10.effect(Backends, LayerMap2.fromRecord({ docker: fakeBackend, smolmachines: layer8 }));
      const layers = Layer10.mergeAll(backends, layerTest2({ failRevoke: options.failRevoke ?? false }), layer4).pipe(
        Layer10.provideMerge(state),
        Layer10.provideMerge(Recorder.layer)
      );
      const scope = Effect30.runSync(Scope5.make());
      const context = await Effect30.runPromise(Layer10.buildWithScope(layers, scope));
      const env = { ...process.env, TMUX: void 0 };
      const api = makeDashApi(context, { cwd, env, queue: approvalQueue, bottleCommand: ["bottle"] });
      const store = new DashStore(api, { watch: options.watch ?? false, ...options.now ? { now: options.now } : {} });
      const st = make3(root);
      const addBottle = async (slug, agent = "coder", o = {}) => {
        const plan = await Effect30.runPromise(Effect30.gen(function* () {
          const loaded = yield* parseManifest(MANIFEST, path18.join(cwd, "bottle.yaml"), cwd);
          return yield* prepare({ loaded, agent, cwd, env: { DASH_TEST_TOKEN: "t" }, name: slug });
        }).pipe(Effect30.provideService(StateStore, st)));
        fs15.mkdirSync(path18.join(st.bottleDir(slug), "egress"), { recursive: true });
        fs15.writeFileSync(path18.join(st.bottleDir(slug), "plan.json"), JSON.stringify(plan));
        fs15.writeFileSync(path18.join(st.bottleDir(slug), "meta.json"), JSON.stringify({
          slug,
          backend: "docker",
          createdAt: new Date(Date.now() - 9e4).toISOString(),
          deployKeys: o.deployKey ? [{ provider: "github", apiUrl: "https://api.github.com", repo: "acme/app", id: 7, title: `bottle ${slug}`, tokenEnv: "GH_ADMIN_TOKEN" }] : []
        }));
        running.add(slug);
      };
      const audit = (slug, entries) => {
        const lines2 = entries.map((e) => JSON.stringify({
          time: (/* @__PURE__ */ new Date()).toISOString(),
          bottle: slug,
          method: "GET",
          host: "api.anthropic.com",
          path: "/v1/messages",
          status: 200,
          bytes_in: 10,
          bytes_out: 20,
          duration_ms: 5,
          decision: "allow",
          rule: "api.anthropic.com",
          ...e
        }));
        fs15.appendFileSync(path18.join(st.bottleDir(slug), "egress", "audit.log"), lines2.map((l) => `${l}
`).join(""));
      };
      const ask = (slug, r) => {
        const now = Date.now();
        writeRequest(path18.join(st.bottleDir(slug), "supervise"), {
          kind: "tool",
          title: "may I?",
          details: "",
          requester: "agent",
          createdAt: new Date(now).toISOString(),
          expiresAt: new Date(now + 30 * 6e4).toISOString(),
          ...r
        });
      };
      return {
        root,
        cwd,
        context,
        store,
        api,
        running,
        addBottle,
        audit,
        ask,
        close: async () => {
          store.stop();
          await Effect30.runPromise(Scope5.close(scope, Exit3.void));
        }
      };
    };
    until = async (check, what, frames = () => "") => {
      for (let i = 0; i < 2e3; i++) {
        if (check()) return;
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error(`never saw ${what}; screen:
${frames()}`);
    };
  }
});

// bench/dash.ts
import { EventEmitter } from "node:events";
var BOTTLES = 20;
var TICKS = 200;
var REFRESHES = 50;
var bench = async () => {
  process.env["NODE_ENV"] = "production";
  const React = await import("react");
  const { render } = await import("ink");
  const { App: App2 } = await Promise.resolve().then(() => (init_App(), App_exports));
  const { makeFixture: makeFixture2 } = await Promise.resolve().then(() => (init_dash_fixtures(), dash_fixtures_exports));
  const mem = (what) => console.log(`  [${what}] rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(1)} MB heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(1)} MB ext ${(process.memoryUsage().external / 2 ** 20).toFixed(1)} MB`);
  mem("modules loaded");
  let clock = Date.now();
  const f = await makeFixture2({ now: () => clock });
  for (let i = 0; i < BOTTLES; i++) {
    const slug = `coder-${String(i).padStart(2, "0")}`;
    await f.addBottle(slug, i % 2 === 0 ? "coder" : "scout");
    f.audit(slug, Array.from({ length: 200 }, (_, j) => j % 7 === 0 ? { decision: "deny", status: 403 } : {}));
    if (i % 3 === 0) f.ask(slug, { id: `benchreq${String(i).padStart(2, "2").replace(/[01]/g, "a")}ab`.slice(0, 12).padEnd(12, "a"), title: "may I push?" });
  }
  await f.store.start();
  mem("20 bottles loaded");
  class Tty extends EventEmitter {
    columns = 80;
    rows = 24;
    isTTY = true;
    bytes = 0;
    writes = 0;
    write(chunk, cb) {
      this.bytes += chunk.length;
      this.writes++;
      cb?.();
      return true;
    }
  }
  const stdout = new Tty();
  const ink = render(React.createElement(App2, { store: f.store, api: f.api }), {
    stdout,
    stdin: Object.assign(new EventEmitter(), { isTTY: true, setRawMode() {
    }, resume() {
    }, pause() {
    }, ref() {
    }, unref() {
    }, read: () => null, setEncoding() {
    } }),
    interactive: true,
    incrementalRendering: true,
    patchConsole: false,
    maxFps: 1e3
  });
  const settle = () => new Promise((r) => setTimeout(r, 2));
  await settle();
  const measure = async (n, step) => {
    const framesBefore = stdout.writes;
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      await step(i);
      await settle();
    }
    const used = process.cpuUsage(start);
    return { ms: (used.user + used.system) / 1e3 / n, frames: stdout.writes - framesBefore };
  };
  mem("first draw");
  const idle = await measure(TICKS, () => void 0);
  const tick = await measure(TICKS, () => {
    clock += 6e4;
    f.store.tick();
  });
  const refresh = await measure(REFRESHES, async (i) => {
    f.audit(`coder-${String(i % BOTTLES).padStart(2, "0")}`, [{}, { decision: "deny", status: 403 }]);
    await f.store.refreshList();
    await Promise.all(f.store.getSnapshot().rows.map((r) => f.store.refreshBottle(r.slug)));
  });
  const rss = process.memoryUsage().rss / 2 ** 20;
  ink.unmount();
  await f.close();
  const tickMs = Math.max(0, tick.ms - idle.ms);
  const refreshMs = Math.max(0, refresh.ms - idle.ms);
  console.log(`bottle dash, ${BOTTLES} bottles on fake layers, 80\xD724`);
  console.log(`  refresh tick (window slide + draw): ${tickMs.toFixed(2)} ms CPU per tick over ${TICKS} ticks (${tick.frames} screen updates written)  target \u2264 20 ms  ${tickMs <= 20 ? "ok" : "OVER"}`);
  console.log(`  full refresh (listBottles + ${BOTTLES} feeds + draw): ${refreshMs.toFixed(2)} ms CPU per refresh over ${REFRESHES}`);
  console.log(`  RSS: ${rss.toFixed(1)} MB  target \u2264 120 MB  ${rss <= 120 ? "ok" : "OVER"}`);
  process.exit(0);
};
if (true) await bench();
else await bundleSelf();
