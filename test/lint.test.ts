import { join } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

// The project's own lint configuration, run on a fixture that reintroduces the regular expressions
// that once let one document or question stall a process: the rules must be on, and errors.
describe('lint', () => {
  it('rejects regular expressions with super-linear backtracking or moves', async () => {
    const eslint = new ESLint({ cwd: root, ignore: false });
    const [result] = await eslint.lintFiles([
      join(root, 'test/fixtures/lint/super-linear-regex.js'),
    ]);
    const errors = (result?.messages ?? []).filter((m) => m.severity === 2).map((m) => m.ruleId);
    expect(errors).toContain('regexp/no-super-linear-backtracking');
    expect(errors).toContain('regexp/no-super-linear-move');
  });

  it('accepts their linear replacements', async () => {
    const eslint = new ESLint({ cwd: root, ignore: false });
    const results = await eslint.lintText(
      [
        "export const spaces = (text) => text.replace(/\\s+/g, ' ');",
        'export const sticky = (text) => text.match(/\\s*\\S+|\\s+/gy) ?? [];',
        '',
      ].join('\n'),
      { filePath: join(root, 'test/fixtures/lint/linear.js') },
    );
    expect(results[0]?.messages ?? []).toEqual([]);
  });
});
