// Builds the playground's bundle (api/static/playground/app.js) from src/ with the pinned `ai`:
// `make web`. The output is checked in, so `make dev` needs no Node.js; tests/unit/test_web_bundle.py
// builds it again and fails when the checked-in file differs.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const outfile = process.argv[2] ?? here("../api/static/playground/app.js");

await build({
  entryPoints: [here("src/main.js")],
  outfile,
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  legalComments: "eof",
  charset: "utf8",
  logLevel: "warning",
});
