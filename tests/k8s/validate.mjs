// Validates rendered Kubernetes manifests offline, two ways:
//  1. each object against its API schema: kubernetes-models (core and apps
//     API) and @kubernetes-models/prometheus-operator (ServiceMonitor,
//     PrometheusRule), whose validate() checks types, enums, formats and
//     required fields;
//  2. field names: those schemas accept unknown fields, as the API server's
//     OpenAPI does, but the API server drops them (or, with strict field
//     validation, rejects them). Each object is type-checked as a literal
//     of the models' TypeScript interface, where an unknown or misspelt
//     field is an error.
// Usage: node validate.mjs MANIFESTS.yaml...   (with NODE_PATH unset; run
// from build/npm so that node_modules resolves)
// Prints one line per object ("ok Kind/name" or "FAIL Kind/name: why") and
// exits 1 if any object fails.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { parseAllDocuments } from "yaml";

const require = createRequire(join(process.cwd(), "package.json"));

// apiVersion -> module prefix of its models.
function modulePath(apiVersion, kind) {
  if (apiVersion === "v1") return `kubernetes-models/v1/${kind}`;
  if (apiVersion.startsWith("monitoring.coreos.com/"))
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

const objects = [];
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length) {
      console.log(`FAIL ${file}: YAML: ${doc.errors[0].message}`);
      process.exitCode = 1;
      continue;
    }
    const obj = doc.toJS();
    if (obj) objects.push({ file, obj });
  }
}
if (objects.length === 0) {
  console.log("FAIL no object in the input");
  process.exit(1);
}

const failures = new Map();
const ts = [];
for (const [i, { obj }] of objects.entries()) {
  const id = `${obj.kind}/${obj.metadata?.name}`;
  const path = modulePath(obj.apiVersion ?? "", obj.kind ?? "");
  let mod;
  try {
    mod = await import(path);
  } catch {
    failures.set(i, `${id}: no schema for apiVersion ${obj.apiVersion}, kind ${obj.kind}`);
    continue;
  }
  try {
    new mod[obj.kind](obj).validate();
  } catch (e) {
    failures.set(i, `${id}: ${e.message}`);
  }
  ts.push(`import type { I${obj.kind} as T${i} } from "${path}";`);
  ts.push(`export const o${i}: T${i} = ${JSON.stringify(obj, null, 1)};`);
}

// One TypeScript program for all objects: excess-property checks on each
// literal name the unknown field and where it is.
const dir = mkdtempSync(join(tmpdir(), "vmprobe-validate-"));
try {
  writeFileSync(join(dir, "objects.ts"), ts.join("\n") + "\n");
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, skipLibCheck: true, types: [],
      module: "nodenext", moduleResolution: "nodenext", target: "es2022",
      baseUrl: process.cwd(), typeRoots: [],
      paths: { "*": [join(process.cwd(), "node_modules", "*")] },
    },
    files: [join(dir, "objects.ts")],
  }));
  const tsc = require.resolve("typescript/bin/tsc");
  try {
    execFileSync(process.execPath, [tsc, "-p", join(dir, "tsconfig.json")], { encoding: "utf8" });
  } catch (e) {
    const lines = (e.stdout || e.message).split("\n").filter((l) => l.trim());
    // objects.ts(LINE,COL): error TS...: map the line back to its object.
    const src = readFileSync(join(dir, "objects.ts"), "utf8").split("\n");
    for (const l of lines) {
      const m = l.match(/objects\.ts\((\d+),\d+\): (.*)/);
      if (!m) continue;
      let n = Number(m[1]) - 1;
      while (n > 0 && !src[n].startsWith("export const o")) n--;
      const i = Number(src[n].match(/^export const o(\d+)/)?.[1] ?? -1);
      const prev = failures.get(i);
      const id = i >= 0 ? `${objects[i].obj.kind}/${objects[i].obj.metadata?.name}` : "?";
      failures.set(i, (prev ? prev + "; " : `${id}: `) + m[2].trim());
    }
    if (![...failures.keys()].length) {
      console.log(`FAIL TypeScript check did not run: ${lines.slice(0, 5).join(" / ")}`);
      process.exitCode = 1;
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

for (const [i, { obj }] of objects.entries()) {
  const id = `${obj.kind}/${obj.metadata?.name}`;
  if (failures.has(i)) {
    console.log(`FAIL ${failures.get(i)}`);
    process.exitCode = 1;
  } else {
    console.log(`ok ${id}`);
  }
}
