// A third, independent MCP client: the official TypeScript SDK
// (`@modelcontextprotocol/sdk`, what Claude Code, Cursor and most agents are built on)
// drives every tool of the real `codelens --mcp` over stdio on a temporary git
// repository, and checks what such a client sees:
// - nothing on the client's stderr (the SDK warns there about schemas it dislikes);
// - every structuredContent validates against its tool's outputSchema, with Ajv in
//   strict mode;
// - the staleness banner and stale_files after an edit.
//
// Usage: node mcp_roundtrip.mjs PATH/TO/codelens   (scripts/test installs the SDK and
// Ajv under target/ts-client and runs it there)

import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, appendFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(join(process.cwd(), "package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");
const Ajv2020 = require("ajv/dist/2020").default;

const BANNER = "⚠️ Some files referenced below were edited since the last index sync";

function check(condition, what) {
  if (!condition) {
    throw new Error(`mcp-typescript: ${what}`);
  }
}

// Everything the SDK (or anything else in this process) writes to stderr is a failure:
// schema warnings there are what agents' logs fill up with.
const stderrLines = [];
const writeStderr = process.stderr.write.bind(process.stderr);
process.stderr.write = (chunk, ...rest) => {
  stderrLines.push(String(chunk));
  return writeStderr(chunk, ...rest);
};
const warn = console.warn;
console.warn = (...args) => {
  stderrLines.push(args.join(" "));
  warn(...args);
};

const codelens = resolve(process.argv[2]);
const repo = realpathSync(mkdtempSync(join(tmpdir(), "codelens-ts-")));
try {
  mkdirSync(join(repo, "web"));
  writeFileSync(join(repo, "web", "page.ts"), "export function renderPage(): string {\n  return 'ok';\n}\n");
  writeFileSync(join(repo, "web", "util.py"), "def helper():\n    return 1\n");
  execFileSync("git", ["init", "-q", "-b", "main"], { cwd: repo, stdio: "pipe" });
  execFileSync(codelens, ["init", "-q"], { cwd: repo, stdio: "pipe" });

  const transport = new StdioClientTransport({
    command: codelens,
    args: ["--mcp", repo],
    cwd: repo,
    // A long debounce keeps the edit pending while we look at it.
    env: { ...process.env, CODELENS_WATCH_DEBOUNCE_MS: "30000" },
    stderr: "pipe",
  });
  const client = new Client({ name: "codelens-ts-check", version: "1.0.0" });
  await client.connect(transport);

  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name).sort();
  check(
    JSON.stringify(names) ===
      JSON.stringify(["file_outline", "find_files", "index_status", "search_symbols", "search_text", "symbol_definition"]),
    `tools: ${names}`,
  );
  // Strict: unknown keywords and formats are errors, not warnings.
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  const validators = {};
  for (const tool of tools) {
    check(tool.annotations?.readOnlyHint === true, `${tool.name} is read-only`);
    ajv.compile(tool.inputSchema);
    check(tool.outputSchema, `${tool.name} has an output schema`);
    validators[tool.name] = ajv.compile(tool.outputSchema);
  }

  async function call(name, args) {
    const result = await client.callTool({ name, arguments: args });
    if (!result.isError) {
      const validate = validators[name];
      check(validate(result.structuredContent), `${name} output: ${ajv.errorsText(validate.errors)}`);
    }
    return result;
  }
  const text = (result) => result.content.filter((b) => b.type === "text").map((b) => b.text).join("");

  const clean = await call("search_symbols", { query: "renderPage", match: "exact" });
  check(!clean.isError && text(clean).includes("web/page.ts:1:"), text(clean));
  check(!text(clean).startsWith(BANNER), "no banner before an edit");
  check(clean.structuredContent.freshness.state === "verified", JSON.stringify(clean.structuredContent.freshness));
  await call("file_outline", { path: "web/page.ts" });
  await call("find_files", { pattern: "*.ts" });
  await call("symbol_definition", { name: "helper" });
  await call("search_text", { pattern: "return", context: 1 });
  await call("index_status", {});

  appendFileSync(join(repo, "web", "page.ts"), "\nexport function editedByTypescript() {}\n");
  const stale = await call("search_symbols", { query: "renderPage", match: "exact" });
  check(text(stale).startsWith(BANNER), text(stale));
  check(
    JSON.stringify(stale.structuredContent.stale_files.map((f) => f.path)) === JSON.stringify(["web/page.ts"]),
    JSON.stringify(stale.structuredContent.stale_files),
  );
  const status = await call("index_status", {});
  check(status.structuredContent.freshness.state === "pending", JSON.stringify(status.structuredContent.freshness));

  const refused = await client.callTool({ name: "file_outline", arguments: { path: "../../etc/passwd" } });
  check(refused.isError === true, "a path outside the project is refused");

  await client.close();
  check(stderrLines.length === 0, `stderr: ${JSON.stringify(stderrLines)}`);
  console.log("mcp-typescript: 1 passed, 0 failed");
} finally {
  rmSync(repo, { recursive: true, force: true });
}
