// Minimal `solc` command-line facade over npm solc-js, for py-solc-x's compile_standard:
// `--version` prints "Version: <long version>"; `--standard-json` reads JSON on stdin and writes
// only the compiler's JSON on stdout (solcjs's own CLI prints a warning line first).
// Other flags py-solc-x may pass (--base-path, --allow-paths) are accepted and ignored: every source,
// imports included (our interface and library, @openzeppelin/contracts from .tools/node_modules), comes
// inline in the JSON input; devnet/compile.py resolves the imports, so solc-js never reads a file.
'use strict';
const path = require('path');

const toolsDir = process.env.FEDLEDGER_TOOLS_DIR || path.join(__dirname, '..', '.tools');
const solc = require(path.join(toolsDir, 'node_modules', 'solc'));
const args = process.argv.slice(2);

if (args.includes('--version')) {
  process.stdout.write('solc, the solidity compiler commandline interface\nVersion: ' + solc.version() + '\n');
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  process.stderr.write('solc-shim: only --version and --standard-json are supported\n');
  process.exit(2);
}
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const output = solc.compile(Buffer.concat(chunks).toString('utf8'));
  process.stdout.write(output + '\n');
});
