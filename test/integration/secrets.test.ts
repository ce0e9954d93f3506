/**
 * No secret leaves through an error, an event, a channel or a debug line.
 * Known markers (private keys, passphrases, a frame's content) are fed
 * through every error path of test/support/secret-paths.ts, and everything
 * the library produced is searched for them: error messages and stacks,
 * every property, causes and nested errors recursively, diagnostics channel
 * messages, and the NODE_DEBUG output of a child process that runs the same
 * paths.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { join } from 'node:path';
import { channels } from '../../src/diagnostics';
import { FRAME_SECRET, NUMERIC_PASSPHRASE, PASSPHRASE, SHORT_SECRET, runPaths } from '../support/secret-paths';

/** Every string reachable from `value`: an error's message, stack, cause and other properties, recursively. */
function strings (value: unknown, out: string[] = [], seen = new Set<unknown>(), depth = 0): string[] {
  if (depth > 8 || value === null || value === undefined) return out;
  if (typeof value === 'string') {
    out.push(value);
    return out;
  }
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    out.push(String(value));
    return out;
  }
  if (typeof value !== 'object' || seen.has(value)) return out;
  seen.add(value);
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    out.push(Buffer.from(value).toString('latin1'));
    return out;
  }
  if (value instanceof Error) {
    out.push(value.message, String(value.stack), value.name);
    strings(value.cause, out, seen, depth + 1);
    if (value instanceof AggregateError) strings(value.errors, out, seen, depth + 1);
  }
  // Sockets and servers are not output: skip what a message may point at by reference.
  if (typeof (value as { pipe?: unknown }).pipe === 'function' || typeof (value as { listen?: unknown }).listen === 'function') return out;
  for (const key of Object.getOwnPropertyNames(value)) {
    out.push(key);
    let child: unknown;
    try {
      child = (value as Record<string, unknown>)[key];
    } catch {
      continue;
    }
    strings(child, out, seen, depth + 1);
  }
  return out;
}

/** The markers found in `texts`, each with where. */
function leaks (texts: string[], markers: string[]): string[] {
  const found: string[] = [];
  for (const marker of markers) {
    for (const text of texts) {
      if (text.includes(marker)) found.push(`${marker} in: ${text.slice(Math.max(0, text.indexOf(marker) - 80), text.indexOf(marker) + marker.length + 20)}`);
    }
  }
  return found;
}

const MARKERS = (keys: string[]): string[] => [PASSPHRASE, String(NUMERIC_PASSPHRASE), FRAME_SECRET, SHORT_SECRET, ...keys];

describe('no secret in any error, event, channel message or debug line', function () {
  this.timeout(30000);

  it('feeds key, passphrase and frame markers through every error path and finds none of them in any output', async () => {
    const published: unknown[] = [];
    const onMessage = (message: unknown): void => { published.push(message); };
    for (const ch of Object.values(channels)) subscribe(ch.name, onMessage);
    let outcome;
    try {
      outcome = await runPaths();
    } finally {
      for (const ch of Object.values(channels)) unsubscribe(ch.name, onMessage);
    }
    const { results, keys } = outcome;
    expect(keys.length).to.be.above(10);
    // Every path produced something to search: the secret was really there to leak.
    const silent = [...results].filter(([, produced]) => produced.length === 0).map(([name]) => name);
    expect(silent, 'paths that produced no error').to.deep.equal([]);
    const errors = [...results.values()].flat();
    const texts = strings(errors);
    expect(texts.join('\n')).to.include('ERR_INVALID_MESSAGE').and.include('ERR_CERT_RELOAD').and.include('ERR_PEER_UNAUTHORIZED').and.include('ERR_FRAME_TOO_LARGE');
    expect(leaks(texts, MARKERS(keys)), 'errors, causes and their properties').to.deep.equal([]);
    expect(published.length, 'channel messages seen').to.be.above(20);
    expect(leaks(strings(published), MARKERS(keys)), 'diagnostics channel messages').to.deep.equal([]);
    console.log(`      ${results.size} error paths, ${errors.length} errors, ${published.length} channel messages searched:\n${[...results].map(([name, produced]) => `        ${name}: ${[...new Set(produced.map((e) => (e as { code?: string }).code ?? (e as Error).name))].join(', ')}`).join('\n')}`);
  });

  it('prints none of them under NODE_DEBUG=gossipmonger-tls-transport (a child process running the same paths)', async () => {
    const child = join(__dirname, '..', 'support', 'secret-paths-child.js');
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(process.execPath, ['--no-warnings', child], { env: { ...process.env, NODE_DEBUG: 'gossipmonger-tls-transport' }, timeout: 25000 }, (error, out, err) => {
        if (error) reject(new Error(`${error.message}\n${err}`));
        else resolve({ stdout: out, stderr: err });
      });
    });
    const { keys, paths } = JSON.parse(stdout.trim().split('\n').pop()!) as { keys: string[]; paths: number };
    expect(paths).to.be.above(30);
    // The debug log did report the refusals it is there for.
    expect(stderr).to.match(/GOSSIPMONGER-TLS-TRANSPORT \d+: .*ERR_INVALID_MESSAGE: frame is not JSON/);
    expect(stderr).to.match(/GOSSIPMONGER-TLS-TRANSPORT \d+: .*ERR_CERT_RELOAD/);
    expect(stderr).to.match(/GOSSIPMONGER-TLS-TRANSPORT \d+: .*ECONNREFUSED/);
    expect(leaks([stderr, stdout.split('\n').slice(0, -2).join('\n')], MARKERS(keys)), 'NODE_DEBUG output').to.deep.equal([]);
  });
});
