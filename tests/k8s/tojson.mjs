// Prints the YAML documents of each file given as one JSON array
// (empty documents left out). Usage: node tojson.mjs FILE...
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const out = [];
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file === "-" ? 0 : file, "utf8"))) {
    if (doc.errors.length) {
      console.error(`${file}: ${doc.errors[0].message}`);
      process.exit(1);
    }
    const v = doc.toJS();
    if (v !== null && v !== undefined) out.push(v);
  }
}
console.log(JSON.stringify(out));
