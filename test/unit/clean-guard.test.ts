import { describe, expect, it } from 'vitest';
import { cleanRefusal, type CleanFacts } from '../../tasker/workdir/clean-guard.js';

function facts(overrides: Partial<CleanFacts>): CleanFacts {
  return { workdir: '/srv/runs/a', home: '/home/alice', isEmpty: false, hasMarker: false, force: false, ...overrides };
}

describe('cleanRefusal', () => {
  it('refuses /, even with force and a marker', () => {
    expect(cleanRefusal(facts({ workdir: '/', isEmpty: true, hasMarker: true, force: true }))).toMatch(/refuses to empty \//);
  });

  it('refuses the home directory and its ancestors, even with force', () => {
    for (const workdir of ['/home/alice', '/home', '/home/alice/']) {
      const reason = cleanRefusal(facts({ workdir, hasMarker: true, isEmpty: true, force: true }));
      expect(reason, workdir).toMatch(/home directory/);
    }
  });

  it('refuses an ancestor of home whose child directory name starts with ".."', () => {
    expect(cleanRefusal(facts({ workdir: '/srv', home: '/srv/..users/alice', force: true }))).toMatch(/home directory/);
  });

  it('allows directories inside home or next to it', () => {
    expect(cleanRefusal(facts({ workdir: '/home/alice/runs', isEmpty: true }))).toBeUndefined();
    expect(cleanRefusal(facts({ workdir: '/home/alicebob', isEmpty: true }))).toBeUndefined();
    expect(cleanRefusal(facts({ workdir: '/home/bob', hasMarker: true }))).toBeUndefined();
  });

  it('refuses a non-empty directory without a marker unless forced', () => {
    const reason = cleanRefusal(facts({ workdir: '/srv/data' }));
    expect(reason).toMatch(/not empty/);
    expect(reason).toMatch(/--force-clean/);
    expect(reason).toContain('/srv/data');
    expect(cleanRefusal(facts({ workdir: '/srv/data', force: true }))).toBeUndefined();
  });

  it('allows an empty directory or one that holds an earlier run', () => {
    expect(cleanRefusal(facts({ isEmpty: true }))).toBeUndefined();
    expect(cleanRefusal(facts({ hasMarker: true }))).toBeUndefined();
  });
});
