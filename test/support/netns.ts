/**
 * Network namespaces for tests that need several hosts: each host a
 * namespace with its own address on one bridge (itself in a namespace), so
 * nothing touches the machine's own network. Used by the multi-host test and
 * the chaos suite; each names its namespaces `<family><pid>-…`, so parallel
 * runs never touch each other's, and a sweep removes those a killed run left.
 *
 * Needs root and iproute2.
 */
import { execFileSync } from 'node:child_process';

export function ip (...args: string[]): string {
  return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Why namespaces cannot be made here, or undefined when they can. */
export function namespacesUnavailable (): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  try {
    ip('-V');
  } catch (error) {
    return `iproute2 is missing: ${(error as Error).message.split('\n')[0]}`;
  }
  return undefined;
}

export interface Topology {
  /** One namespace per host, host i (from 1) at `${subnet}.${i}`. */
  hosts: string[];
  /** The bridge's namespace. */
  bridge: string;
  addressOf (host: number): string;
}

/**
 * Namespaces of one family (`gmt`, `gmch`...) for this process. `subnet` is
 * three octets of RFC 2544's benchmarking range (198.18.0.0/15), never routed.
 */
export class Namespaces {
  readonly prefix: string;
  private readonly onExit = (): void => this.sweep();

  constructor (readonly family: string, readonly subnet: string) {
    if (!/^[a-z]+$/.test(family)) throw new TypeError('family must be lower-case letters');
    this.prefix = `${family}${process.pid}-`;
  }

  /** Deletes this run's namespaces, and those a killed run of the same family left behind. */
  sweep (): void {
    let list = '';
    try { list = ip('netns', 'list'); } catch { return; }
    const pattern = new RegExp(`^${this.family}([0-9]+)-`);
    for (const line of list.split('\n')) {
      const name = line.split(' ')[0] ?? '';
      const owner = pattern.exec(name);
      if (owner && (name.startsWith(this.prefix) || !alive(Number(owner[1])))) {
        try { ip('netns', 'del', name); } catch { /* already gone */ }
      }
    }
  }

  /** `hosts` namespaces on one bridge; swept on exit, even when the process fails. */
  build (hosts: number): Topology {
    this.sweep();
    process.on('exit', this.onExit);
    const bridge = `${this.prefix}br`;
    ip('netns', 'add', bridge);
    ip('-n', bridge, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', bridge, 'link', 'set', 'br0', 'up');
    const names: string[] = [];
    for (let i = 1; i <= hosts; i++) {
      const ns = `${this.prefix}h${i}`;
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `v${i}`, 'netns', bridge);
      ip('-n', bridge, 'link', 'set', `v${i}`, 'master', 'br0', 'up');
      ip('-n', ns, 'addr', 'add', `${this.subnet}.${i}/24`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      names.push(ns);
    }
    return { hosts: names, bridge, addressOf: (host) => `${this.subnet}.${host}` };
  }

  /** Takes a host's link down (a partition) or up again (the heal). */
  link (ns: string, state: 'up' | 'down'): void {
    ip('-n', ns, 'link', 'set', 'eth0', state);
  }

  /** Removes everything `build` made and stops sweeping on exit. */
  destroy (): void {
    this.sweep();
    process.removeListener('exit', this.onExit);
  }
}
