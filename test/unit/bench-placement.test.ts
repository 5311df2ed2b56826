import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { effectivePriority, enterCpuGroup, findCpuHierarchy, GROUP_PREFIX, removeLeftoverGroups, type CgroupFs } from '../../bench/placement.js';

/** A directory laid out like a cgroup mount (plain files: the kernel's cgroupfs is not needed for the logic). */
function fakeFs(kind: 'v1' | 'v2' | 'v2-nocpu' | 'none', self: string): CgroupFs & { cleanup: () => void } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'vxpl-'));
  if (kind === 'v1') {
    mkdirSync(path.join(root, 'cpu'));
    writeFileSync(path.join(root, 'cpu', 'cpu.shares'), '1024');
    writeFileSync(path.join(root, 'cpu', 'cgroup.procs'), '');
  } else if (kind.startsWith('v2')) {
    writeFileSync(path.join(root, 'cgroup.controllers'), kind === 'v2' ? 'cpuset cpu io memory pids' : 'memory pids');
    writeFileSync(path.join(root, 'cgroup.subtree_control'), '');
    writeFileSync(path.join(root, 'cgroup.procs'), '');
  }
  return { root, selfCgroup: () => self, pid: 4242, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

describe('CPU placement (bench/placement.ts)', () => {
  // npm test sets the test-only override for the benches it runs; these tests judge the placement itself.
  const override = process.env.VXTAP_TEST_CPU_PRIORITY;
  beforeEach(() => delete process.env.VXTAP_TEST_CPU_PRIORITY);
  afterEach(() => {
    if (override === undefined) delete process.env.VXTAP_TEST_CPU_PRIORITY;
    else process.env.VXTAP_TEST_CPU_PRIORITY = override;
  });

  it('finds the cpu hierarchy of cgroup v1 and v2, and says why there is none', () => {
    const v1 = fakeFs('v1', '4:memory:/x\n1:cpu:/\n0::/\n');
    const v2 = fakeFs('v2', '0::/system.slice/runner.service\n');
    const nocpu = fakeFs('v2-nocpu', '0::/\n');
    const none = fakeFs('none', '0::/\n');
    try {
      expect(findCpuHierarchy(v1)).toMatchObject({ version: 1, mount: path.join(v1.root, 'cpu'), current: '/', weightFile: 'cpu.shares' });
      expect(findCpuHierarchy(v2)).toMatchObject({ version: 2, mount: v2.root, current: '/system.slice/runner.service', weightFile: 'cpu.weight', weightValue: '10000' });
      expect(findCpuHierarchy(nocpu)).toBe('cgroup v2 without the cpu controller');
      expect(findCpuHierarchy(none)).toBe('no cgroup hierarchy with the cpu controller');
    } finally {
      for (const f of [v1, v2, nocpu, none]) f.cleanup();
    }
  });

  it('v2: enables +cpu, makes the group with the top weight, moves the pid in, and back on leave', () => {
    const fs = fakeFs('v2', '0::/\n');
    try {
      const placed = enterCpuGroup('run1', 'high', fs);
      expect(placed.placement).toEqual({ priority: 'high', cgroup: `/${GROUP_PREFIX}run1`, cgroupVersion: 2, weight: 'cpu.weight 10000', note: null });
      const dir = path.join(fs.root, `${GROUP_PREFIX}run1`);
      expect(readFileSync(path.join(fs.root, 'cgroup.subtree_control'), 'utf8')).toBe('+cpu');
      expect(readFileSync(path.join(dir, 'cpu.weight'), 'utf8')).toBe('10000');
      expect(readFileSync(path.join(dir, 'cgroup.procs'), 'utf8')).toBe('4242');
      placed.leave();
      placed.leave(); // idempotent
      expect(readFileSync(path.join(fs.root, 'cgroup.procs'), 'utf8')).toBe('4242');
    } finally {
      fs.cleanup();
    }
  });

  it('v1: cpu.shares 262144', () => {
    const fs = fakeFs('v1', '1:cpu:/\n');
    try {
      const placed = enterCpuGroup('run2', 'high', fs);
      expect(placed.placement).toMatchObject({ cgroupVersion: 1, weight: 'cpu.shares 262144', note: null });
      expect(readFileSync(path.join(fs.root, 'cpu', `${GROUP_PREFIX}run2`, 'cpu.shares'), 'utf8')).toBe('262144');
      placed.leave();
    } finally {
      fs.cleanup();
    }
  });

  it('normal priority, no controller, or a refused write: stays put and the note says why', () => {
    const fs = fakeFs('v2-nocpu', '0::/\n');
    const taken = fakeFs('v2', '0::/\n');
    try {
      expect(enterCpuGroup('r', 'normal', fs).placement).toMatchObject({ priority: 'normal', cgroup: null, note: expect.stringMatching(/normal/) as unknown });
      expect(enterCpuGroup('r', 'high', fs).placement).toMatchObject({ cgroup: null, note: expect.stringMatching(/without the cpu controller/) as unknown });
      mkdirSync(path.join(taken.root, `${GROUP_PREFIX}dup`)); // the group exists already: mkdir refuses
      expect(enterCpuGroup('dup', 'high', taken).placement).toMatchObject({ cgroup: null, note: expect.stringMatching(/EEXIST/) as unknown });
      expect(() => enterCpuGroup('../x', 'high', taken)).toThrow(/cpu group id/);
    } finally {
      fs.cleanup();
      taken.cleanup();
    }
  });

  it('join: a second member joins the existing group (without join it is refused)', () => {
    const fs = fakeFs('v2', '0::/\n');
    try {
      const first = enterCpuGroup('shared', 'high', fs);
      const second = enterCpuGroup('shared', 'high', fs, true);
      expect(second.placement).toMatchObject({ cgroup: `/${GROUP_PREFIX}shared`, note: null });
      expect(enterCpuGroup('shared', 'high', fs).placement).toMatchObject({ cgroup: null, note: expect.stringMatching(/EEXIST/) as unknown });
      expect(readFileSync(path.join(fs.root, `${GROUP_PREFIX}shared`, 'cgroup.procs'), 'utf8')).toBe('4242');
      first.leave();
      second.leave();
    } finally {
      fs.cleanup();
    }
  });

  it('VXTAP_TEST_CPU_PRIORITY=normal (npm test) turns high into normal, and says so', () => {
    expect(effectivePriority('high', { VXTAP_TEST_CPU_PRIORITY: 'normal' })).toBe('normal');
    expect(effectivePriority('high', {})).toBe('high');
    expect(effectivePriority('normal', {})).toBe('normal');
    const fs = fakeFs('v2', '0::/\n');
    process.env.VXTAP_TEST_CPU_PRIORITY = 'normal';
    try {
      expect(enterCpuGroup('t', 'high', fs).placement).toMatchObject({ priority: 'normal', cgroup: null, note: expect.stringMatching(/VXTAP_TEST_CPU_PRIORITY=normal/) as unknown });
    } finally {
      fs.cleanup();
    }
  });

  it('removeLeftoverGroups removes empty groups of killed runs and keeps busy ones', () => {
    const fs = fakeFs('v2', '0::/\n');
    try {
      for (const [n, procs] of [
        ['dead', ''],
        ['live', '123\n'],
      ]) {
        mkdirSync(path.join(fs.root, `${GROUP_PREFIX}${n}`));
        writeFileSync(path.join(fs.root, `${GROUP_PREFIX}${n}`, 'cgroup.procs'), procs);
      }
      // Plain files make rmdir fail here (the kernel's cgroupfs has no such problem); what matters is which were tried.
      removeLeftoverGroups(fs);
      expect(existsSync(path.join(fs.root, `${GROUP_PREFIX}live`))).toBe(true);
    } finally {
      fs.cleanup();
    }
  });

  it.runIf(process.getuid?.() === 0 && (existsSync('/sys/fs/cgroup/cgroup.controllers') || existsSync('/sys/fs/cgroup/cpu/cpu.shares')))(
    'on this machine as root: the process really moves into the group and back, and the group is gone afterwards',
    () => {
      const before = readFileSync('/proc/self/cgroup', 'utf8');
      const placed = enterCpuGroup(`vxpl-${process.pid}`, 'high');
      try {
        expect(placed.placement.note).toBeNull();
        expect(readFileSync('/proc/self/cgroup', 'utf8')).toContain(`/${GROUP_PREFIX}vxpl-${process.pid}`);
      } finally {
        placed.leave();
      }
      expect(readFileSync('/proc/self/cgroup', 'utf8')).toBe(before);
      const mount = existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/cpu';
      expect(existsSync(path.join(mount, `${GROUP_PREFIX}vxpl-${process.pid}`))).toBe(false);
    },
  );
});
