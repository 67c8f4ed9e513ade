import { describe, expect, it } from 'vitest';
import { formatHelpEnd, wrapWords } from '../../shared/cli/help-text.js';

describe('formatHelpEnd', () => {
  it('prints each example under its comment, and exit codes with wrapped meanings', () => {
    const text = formatHelpEnd([{ what: 'run it', command: 'tasker run jobs.sh' }], [[0, 'fine'], [130, 'interrupted '.repeat(8).trim()]]);
    expect(text.split('\n')).toEqual([
      '',
      'Examples:',
      '  # run it',
      '  tasker run jobs.sh',
      '',
      'Exit codes:',
      '  0    fine',
      '  130  interrupted interrupted interrupted interrupted interrupted interrupted',
      '       interrupted interrupted',
    ]);
  });

  it('wraps at spaces and never splits a word', () => {
    expect(wrapWords('aa bb cc', 5)).toEqual(['aa bb', 'cc']);
    expect(wrapWords('averyveryverylongword x', 5)).toEqual(['averyveryverylongword', 'x']);
  });
});
