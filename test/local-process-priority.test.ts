import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { lowerCpuPriority } from '../lib/local-services/process';

describe('the local worker’s CPU priority (npm run dev, bench:api)', () => {
  it('lowers a started process’s nice value and, where Linux has autogroups, its session’s group', async () => {
    const child = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    try {
      lowerCpuPriority(child.pid!, 7);
      expect(os.getPriority(child.pid!)).toBe(7);
      const autogroup = `/proc/${child.pid}/autogroup`;
      if (fs.existsSync(autogroup) && fs.readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1') {
        // Its own session (detached), so its own group: lowering it leaves this process's group alone.
        expect(fs.readFileSync(autogroup, 'utf8')).toMatch(/nice 7\b/);
        expect(fs.readFileSync(`/proc/${process.pid}/autogroup`, 'utf8')).not.toEqual(fs.readFileSync(autogroup, 'utf8'));
      }
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('leaves a process it may not change as it was, without throwing', () => {
    expect(() => lowerCpuPriority(2 ** 22 + 12345, 7)).not.toThrow();
  });
});
