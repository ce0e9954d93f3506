/**
 * npm start: the demo cluster converges and says so; it fails loudly when it does not.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { parseDemoArgs } from '../../scripts/demo';

const demo = join(__dirname, '..', '..', 'scripts', 'demo.js');

function run (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [demo, ...args], { timeout: 40000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('demo (npm start)', () => {
  it('converges over mutual TLS by default and prints one summary line', async function () {
    this.timeout(45000);
    const { code, stdout } = await run(['--peers', '4', '--interval', '100']);
    expect(code, stdout).to.equal(0);
    expect(stdout).to.match(/demo: 4 gossipmonger peers on 127\.0\.0\.1, mutual TLS, keepAlive/);
    expect(stdout).to.match(/replicated 12\/12 key views \(100%\)/);
    expect(stdout).to.match(/^converged: 4 peers, mtls keepAlive, [0-9.]+ s to converge, [1-9][0-9]* messages and [1-9][0-9]* bytes sent, errors: none/m);
  });

  it('runs in plain mode with keepAlive', async function () {
    this.timeout(45000);
    const { code, stdout } = await run(['--peers', '3', '--mode', 'plain', '--keep-alive', '--interval', '50']);
    expect(code, stdout).to.equal(0);
    expect(stdout).to.match(/^converged: 3 peers, plain keepAlive/m);
  });

  it('exits 1 with a clear message when the cluster does not converge in time', async function () {
    this.timeout(45000);
    // One round at start, the next 2 s later: 6 views cannot all be replicated within 300 ms,
    // and the demo exits within one interval after giving up.
    const { code, stdout } = await run(['--peers', '3', '--mode', 'tls', '--interval', '2000', '--timeout', '300']);
    expect(code).to.equal(1);
    expect(stdout).to.match(/^NOT converged: [0-9]+\/6 key views after/m);
  });

  it('exits 2 on a bad flag, naming it', async () => {
    const { code, stderr } = await run(['--mode', 'udp']);
    expect(code).to.equal(2);
    expect(stderr).to.match(/--mode must be plain, tls or mtls/);
  });

  it('parses its flags with the documented defaults', () => {
    expect(parseDemoArgs([])).to.deep.equal({ peers: 5, mode: 'mtls', keepAlive: undefined, interval: 200, timeout: 30000 });
    expect(parseDemoArgs(['--per-message']).keepAlive).to.equal(false);
    expect(() => parseDemoArgs(['--peers', '1'])).to.throw(/--peers/);
  });
});
