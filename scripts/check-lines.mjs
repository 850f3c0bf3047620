// Lines longer than the formatter's width, which the formatter cannot break (long strings,
// regular expressions, comments): every tracked source file stays within it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const WIDTH = JSON.parse(readFileSync(new URL('../biome.json', import.meta.url), 'utf8')).formatter.lineWidth;
const files = execFileSync('git', ['ls-files', '*.ts', '*.mjs', '*.js', '*.css', '*.html', '*.wgsl', '*.py'], { encoding: 'utf8' })
  .split('\n')
  .filter(Boolean);
const long = [];
for (const file of files) {
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.length > WIDTH) long.push(`${file}:${i + 1}: ${line.length} characters`);
    });
}
if (long.length > 0) {
  console.error(`Lines longer than ${WIDTH} characters (split them by hand):\n${long.join('\n')}`);
  process.exit(1);
}
console.log(`All ${files.length} source files keep within ${WIDTH} characters a line.`);
