#!/usr/bin/env node
// The package's `cairn` command: the compiled CLI after `npm run build`, else the TypeScript source via tsx.
const fs = require('node:fs');
const path = require('node:path');
const built = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (fs.existsSync(built)) {
  require(built);
} else {
  require('tsx/cjs');
  require('./main.ts');
}
