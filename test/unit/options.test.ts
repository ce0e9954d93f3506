import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { DEFAULTS, nearestName, resolveOptions, splitCrls } from '../../src/options';
import { TcpTransport, ca, pem } from '../support/helpers';

const tlsBase = (): { key: string; cert: string; ca: string } => ({ ...pem('peer-1'), ca: pem('ca').cert });

describe('options', () => {
  const bad: Array<[string, unknown, RegExp, 'TypeError' | 'RangeError']> = [
    ['options itself', 'x', /^options must be an object/, 'TypeError'],
    ['an unknown option', { maxFramesize: 1 }, /options\.maxFramesize is not an option/, 'TypeError'],
    ['host', { host: 5 }, /options\.host/, 'TypeError'],
    ['port type', { port: 'eighty' }, /options\.port/, 'TypeError'],
    ['port string range', { port: '70000' }, /options\.port/, 'RangeError'],
    ['port signed string', { port: '-1' }, /options\.port/, 'TypeError'],
    ['port range', { port: 70000 }, /options\.port/, 'RangeError'],
    ['maxFrameSize zero', { maxFrameSize: 0 }, /options\.maxFrameSize must be a positive integer or Infinity/, 'RangeError'],
    ['maxFrameSize fraction', { maxFrameSize: 1.5 }, /options\.maxFrameSize/, 'RangeError'],
    ['maxFrameSize NaN', { maxFrameSize: NaN }, /options\.maxFrameSize/, 'TypeError'],
    ['connectTimeout', { connectTimeout: -1 }, /options\.connectTimeout/, 'RangeError'],
    ['handshakeTimeout', { handshakeTimeout: 'soon' }, /options\.handshakeTimeout/, 'TypeError'],
    ['idleTimeout', { idleTimeout: Infinity }, /options\.idleTimeout/, 'RangeError'],
    ['maxConnections', { maxConnections: 0 }, /options\.maxConnections/, 'RangeError'],
    ['maxHandshakes', { maxHandshakes: 0 }, /options\.maxHandshakes must be a positive integer or Infinity/, 'RangeError'],
    ['outbound.maxHandshakes', { outbound: { maxHandshakes: 2.5 } }, /options\.outbound\.maxHandshakes/, 'RangeError'],
    ['keepAlive type', { keepAlive: 'yes' }, /options\.keepAlive/, 'TypeError'],
    ['keepAlive unknown key', { keepAlive: { idle: 1 } }, /options\.keepAlive\.idle is not an option/, 'TypeError'],
    ['keepAlive.maxQueuedBytes', { keepAlive: { maxQueuedBytes: 0 } }, /options\.keepAlive\.maxQueuedBytes/, 'RangeError'],
    ['outbound.maxQueuedBytes range', { outbound: { maxQueuedBytes: 0 } }, /options\.outbound\.maxQueuedBytes/, 'RangeError'],
    ['outbound.maxQueuedBytes type', { outbound: { maxQueuedBytes: '64MB' } }, /options\.outbound\.maxQueuedBytes/, 'TypeError'],
    ['outbound.maxQueuedBytes Infinity', { outbound: { maxQueuedBytes: Infinity } }, /options\.outbound\.maxQueuedBytes/, 'RangeError'],
    ['tls type', { tls: true }, /options\.tls must be an object/, 'TypeError'],
    ['tls cert without key', { tls: { ca: 'x', cert: 'y' } }, /options\.tls\.key and options\.tls\.cert go together/, 'TypeError'],
    ['tls.minVersion', { tls: { ...tlsBase(), minVersion: 'TLSv1' } }, /options\.tls\.minVersion/, 'RangeError'],
    ['tls.requestCert', { tls: { ...tlsBase(), requestCert: 'yes' } }, /options\.tls\.requestCert/, 'TypeError'],
    ['tls.rejectUnauthorized', { tls: { ...tlsBase(), rejectUnauthorized: 0 } }, /options\.tls\.rejectUnauthorized/, 'TypeError'],
    ['tls.authorize value', { tls: { ...tlsBase(), authorize: 'all' } }, /options\.tls\.authorize/, 'TypeError'],
    ['tls.authorize sender-id without requestCert', { tls: { ...tlsBase(), authorize: 'sender-id' } }, /options\.tls\.authorize .*requestCert/, 'TypeError'],
    ['tls.servername', { tls: { ...tlsBase(), servername: '' } }, /options\.tls\.servername/, 'TypeError'],
    ['tls.checkServerIdentity', { tls: { ...tlsBase(), checkServerIdentity: 'no' } }, /options\.tls\.checkServerIdentity/, 'TypeError'],
    ['tls.sessionCache type', { tls: { ...tlsBase(), sessionCache: '1' } }, /options\.tls\.sessionCache/, 'TypeError'],
    ['tls.sessionCache range', { tls: { ...tlsBase(), sessionCache: -1 } }, /options\.tls\.sessionCache/, 'RangeError'],
    ['tls.plaintext type', { tls: { ...tlsBase(), plaintext: true } }, /options\.tls\.plaintext must be an object/, 'TypeError'],
    ['tls.plaintext.until', { tls: { ...tlsBase(), plaintext: { until: 'never' } } }, /options\.tls\.plaintext\.until/, 'TypeError'],
    ['tls.plaintext unknown key', { tls: { ...tlsBase(), plaintext: { deadline: 1 } } }, /options\.tls\.plaintext\.deadline is not an option/, 'TypeError'],
    ['tls.plaintext.accept', { tls: { ...tlsBase(), plaintext: { accept: 1 } } }, /options\.tls\.plaintext\.accept/, 'TypeError'],
    ['cluster without tls', { cluster: 'blue' }, /options\.cluster needs options\.tls/, 'TypeError'],
    ['cluster type', { cluster: 3 }, /options\.cluster must be a non-empty string/, 'TypeError'],
    ['cluster length', { cluster: 'x'.repeat(201), tls: tlsBase() }, /options\.cluster must be at most 200 bytes/, 'RangeError'],
    ['membership true', { membership: true }, /options\.membership must be false or an object/, 'TypeError'],
    ['membership.pendingPerIntroducer', { membership: { pendingPerIntroducer: 0 } }, /options\.membership\.pendingPerIntroducer/, 'RangeError'],
    ['membership.proofsPerSecond', { membership: { proofsPerSecond: '16' } }, /options\.membership\.proofsPerSecond/, 'TypeError'],
    ['membership.proofTimeout', { membership: { proofTimeout: Infinity } }, /options\.membership\.proofTimeout/, 'RangeError'],
    ['membership.idsPerSource', { membership: { idsPerSource: 0 } }, /options\.membership\.idsPerSource/, 'RangeError']
  ];

  describe('resolveOptions', () => {
    it('fills in the documented defaults', () => {
      const o = resolveOptions(undefined);
      expect(o).to.deep.include({
        host: 'localhost',
        port: 9742,
        tls: undefined,
        maxFrameSize: 1048576,
        keepAlive: undefined,
        connectTimeout: 5000,
        handshakeTimeout: 5000,
        idleTimeout: 360000,
        maxConnections: 256,
        maxHandshakes: 32,
        cluster: undefined
      });
      expect(o.outbound.maxHandshakes).to.equal(1);
      // The server keeps a silent connection longer than a client keeps its own.
      expect(o.idleTimeout).to.be.above(DEFAULTS.keepAliveIdleTimeout);
    });

    it('fills in the TLS defaults: minVersion TLSv1.2, no requestCert, rejectUnauthorized, authorize any', () => {
      const o = resolveOptions({ tls: tlsBase() });
      expect(o.tls!.context.minVersion).to.equal('TLSv1.2');
      expect(o.tls!.requestCert).to.equal(false);
      expect(o.tls!.rejectUnauthorized).to.equal(true);
      expect(o.tls!.authorize).to.equal('any');
      expect(o.tls!.sessionCache).to.equal(256);
      expect(o.tls!.plaintext).to.deep.equal({ accept: false, send: false, until: undefined });
    });

    it('fills in keepAlive defaults from true', () => {
      expect(resolveOptions({ keepAlive: true }).keepAlive).to.deep.equal({
        idleTimeout: DEFAULTS.keepAliveIdleTimeout, maxQueuedBytes: DEFAULTS.keepAliveMaxQueuedBytes
      });
    });

    it('turns keepAlive on by default with tls, and keepAlive: false turns it off', () => {
      const tls = tlsBase();
      expect(resolveOptions({ tls }).keepAlive).to.deep.equal({
        idleTimeout: DEFAULTS.keepAliveIdleTimeout, maxQueuedBytes: DEFAULTS.keepAliveMaxQueuedBytes
      });
      expect(resolveOptions({ tls, keepAlive: false }).keepAlive).to.equal(undefined);
      expect(resolveOptions({ tls, keepAlive: { idleTimeout: 5 } }).keepAlive!.idleTimeout).to.equal(5);
      expect(resolveOptions({}).keepAlive).to.equal(undefined);
    });

    it('accepts port 0, Infinity for maxFrameSize, and a deadline as a date string', () => {
      expect(resolveOptions({ port: 0 }).port).to.equal(0);
      expect(resolveOptions({ maxFrameSize: Infinity }).maxFrameSize).to.equal(Infinity);
      const until = resolveOptions({ tls: { ...tlsBase(), plaintext: { accept: true, until: '2030-01-01T00:00:00Z' } } }).tls!.plaintext.until;
      expect(until).to.equal(Date.parse('2030-01-01T00:00:00Z'));
    });

    it('does not mutate the caller\'s object', () => {
      const tls = tlsBase();
      const options = Object.freeze({ port: 0, tls: Object.freeze(tls) });
      resolveOptions(options);
      expect(Object.keys(tls)).to.deep.equal(['key', 'cert', 'ca']);
    });

    describe('option names', () => {
      const nearMisses: Array<[string, Record<string, unknown>, string]> = [
        ['tls.authorise (British spelling)', { tls: { ...tlsBase(), authorise: 'sender-id' } }, 'options.tls.authorize'],
        ['tls.requestcert (case)', { tls: { ...tlsBase(), requestcert: true } }, 'options.tls.requestCert'],
        ['tls.rejectUnauthorised', { tls: { ...tlsBase(), rejectUnauthorised: false } }, 'options.tls.rejectUnauthorized'],
        ['tls.sessioncache', { tls: { ...tlsBase(), sessioncache: 0 } }, 'options.tls.sessionCache'],
        ['tls.minversion', { tls: { ...tlsBase(), minversion: 'TLSv1.3' } }, 'options.tls.minVersion'],
        ['tls.ciphres (swap)', { tls: { ...tlsBase(), ciphres: 'x' } }, 'options.tls.ciphers'],
        ['keepalive', { keepalive: true }, 'options.keepAlive'],
        ['maxFramesize', { maxFramesize: 1 }, 'options.maxFrameSize'],
        ['keepAlive.idletimeout', { keepAlive: { idletimeout: 1 } }, 'options.keepAlive.idleTimeout'],
        ['tls.plaintext.acept', { tls: { ...tlsBase(), plaintext: { acept: true } } }, 'options.tls.plaintext.accept'],
        ['membership.proofTimeOut', { membership: { proofTimeOut: 1 } }, 'options.membership.proofTimeout']
      ];
      for (const [what, options, suggestion] of nearMisses) {
        it(`throws a TypeError for ${what}, suggesting ${suggestion}`, () => {
          expect(() => resolveOptions(options)).to.throw(TypeError, `did you mean ${suggestion}?`);
        });
      }

      it('names an unknown option without a suggestion when nothing is close', () => {
        expect(() => resolveOptions({ tls: { ...tlsBase(), frobnicate: 1 } })).to.throw(TypeError, /^options\.tls\.frobnicate is not a TLS option[^?]*$/);
        expect(() => resolveOptions({ colour: 'blue' })).to.throw(TypeError, /^options\.colour is not an option of TcpTransport$/);
      });

      it('knows every top-level option that has a default (DEFAULTS), by name', () => {
        // Nested defaults are flattened (keepAliveIdleTimeout, tlsMinVersion, outboundMaxConnections, membershipProofTimeout): not top-level names.
        const top = Object.keys(DEFAULTS).filter((key) => !/^(tls|keepAlive|outbound|membership)[A-Z]/.test(key));
        expect(top.length).to.be.above(8);
        for (const key of top) {
          const value = (DEFAULTS as Record<string, unknown>)[key];
          expect(() => resolveOptions({ [key]: value }), key).to.not.throw(/is not an option/);
        }
      });

      it('says why a Node connect/server option is not taken', () => {
        expect(() => resolveOptions({ tls: { ...tlsBase(), SNICallback: () => {} } })).to.throw(TypeError, /options\.tls\.SNICallback is not supported: .*setSecureContext/);
        expect(() => resolveOptions({ tls: { ...tlsBase(), ALPNProtocols: ['x'] } })).to.throw(TypeError, /options\.tls\.ALPNProtocols is not supported: .*options\.cluster/);
      });

      it('accepts Node\'s secure-context options by name and passes them on', () => {
        const o = resolveOptions({ tls: { ...tlsBase(), ciphers: 'HIGH', ecdhCurve: 'auto', sigalgs: 'ECDSA+SHA256', maxVersion: 'TLSv1.3', honorCipherOrder: true, sessionTimeout: 60 } });
        expect(o.tls!.context).to.include({ ciphers: 'HIGH', ecdhCurve: 'auto', sigalgs: 'ECDSA+SHA256', maxVersion: 'TLSv1.3', honorCipherOrder: true, sessionTimeout: 60 });
      });

      it('checks setSecureContext() option names the same way', () => {
        const t = new TcpTransport({ port: 0, tls: tlsBase() });
        expect(() => t.setSecureContext({ crt: 'x' } as never)).to.throw(TypeError, /tlsOptions\.crt is not a secure-context option; did you mean .*tlsOptions\.cert\?/);
        expect(() => t.setSecureContext({ authorize: 'any' } as never)).to.throw(TypeError, /tlsOptions\.authorize cannot change after construction/);
      });

      it('suggests nothing further than a few edits away', () => {
        expect(nearestName('authorise', ['authorize', 'ca'])).to.equal('authorize');
        expect(nearestName('keepalive', ['keepAlive'])).to.equal('keepAlive');
        expect(nearestName('zzz', ['ca', 'key'])).to.equal(undefined);
        expect(nearestName('totallyDifferent', ['requestCert'])).to.equal(undefined);
      });
    });

    describe('trust material where it enters', () => {
      const key = (): string => pem('peer-1').key;
      /** The message must name the option and quote none of `secrets`. */
      const throwsNaming = (fn: () => unknown, option: RegExp, secrets: string[]): void => {
        let error: Error | undefined;
        try {
          fn();
        } catch (e) {
          error = e as Error;
        }
        expect(error, String(option)).to.be.instanceOf(TypeError);
        expect(error!.message).to.match(option);
        for (const secret of secrets) expect(error!.message + String(error!.stack)).to.not.include(secret);
      };

      it('a file path where PEM text belongs throws a TypeError naming the option, at construction and in setSecureContext()', () => {
        const t = new TcpTransport({ port: 0, tls: tlsBase() });
        for (const name of ['key', 'cert', 'ca', 'crl'] as const) {
          const path = `certs/node-a.${name}`;
          throwsNaming(() => resolveOptions({ tls: { ...tlsBase(), [name]: path } }), new RegExp(`^options\\.tls\\.${name} must be PEM text .*not a file name`), [path]);
          throwsNaming(() => resolveOptions({ tls: { ...tlsBase(), [name]: Buffer.from(path) } }), new RegExp(`^options\\.tls\\.${name} must be PEM text`), [path]);
          throwsNaming(() => t.setSecureContext({ [name]: path }), new RegExp(`tlsOptions\\.${name} must be PEM text`), [path]);
        }
        throwsNaming(() => resolveOptions({ tls: { ...tlsBase(), ca: [ca(), 'ca.crt'] } }), /^options\.tls\.ca\[1\] must be PEM text/, ['ca.crt']);
        throwsNaming(() => resolveOptions({ tls: { ...tlsBase(), key: [{ pem: 'node.key' }] } }), /^options\.tls\.key\[0\]\.pem must be PEM text/, ['node.key']);
        // What Node takes stays accepted: PEM text, Buffers of it, arrays, { pem } objects. (A DER
        // Buffer is not a path either; as `ca` it is refused as trust material OpenSSL would not
        // read, ERR_TRUST_MATERIAL, not as a path: test/integration/trust-differential.test.ts.)
        expect(() => resolveOptions({ tls: { ...tlsBase(), ca: [Buffer.from(ca())], key: [{ pem: key() }] } })).to.not.throw();
        const der = new X509Certificate(ca()).raw;
        expect(() => resolveOptions({ tls: { ...tlsBase(), ca: [der] } })).to.throw().with.property('code', 'ERR_TRUST_MATERIAL');
      });

      it('PEM text given as options.tls, and a passphrase that is not a string, throw without quoting the value', () => {
        throwsNaming(() => new TcpTransport({ tls: key() as never }), /^options\.tls must be an object .*PEM text \(\d+ characters, not shown\)/, [key().split('\n')[1]!]);
        throwsNaming(() => new TcpTransport({ tls: 'hunter2-passphrase' as never }), /^options\.tls must be an object/, ['hunter2-passphrase']);
        throwsNaming(() => new TcpTransport({ tls: { ...tlsBase(), passphrase: 987654321 as never } }), /^options\.tls\.passphrase must be a string; got a number$/, ['987654321']);
        throwsNaming(() => new TcpTransport({ tls: { ...tlsBase(), key: [{ pem: key(), passphrase: 987654321 as never }] } }), /passphrase must be a string/, ['987654321']);
      });

      it('tls.requestCert without tls.ca throws at construction naming options.tls.ca, and ca cannot be removed later', () => {
        const { ca: _ca, ...noCa } = tlsBase();
        throwsNaming(() => new TcpTransport({ tls: { ...noCa, requestCert: true } }), /^options\.tls\.requestCert needs options\.tls\.ca/, []);
        const t = new TcpTransport({ port: 0, tls: { ...tlsBase(), requestCert: true } });
        throwsNaming(() => t.setSecureContext({ ca: undefined }), /tlsOptions\.ca cannot be removed/, []);
        expect(() => new TcpTransport({ tls: noCa })).to.not.throw();
      });

      it('a crl holding several CRLs is handed to Node one CRL per item (Node reads one from each)', () => {
        const one = '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n';
        const two = '-----BEGIN X509 CRL-----\nBBBB\n-----END X509 CRL-----\n';
        expect(splitCrls(one + two)).to.deep.equal([one, two]);
        expect(splitCrls(Buffer.from(one + two))).to.deep.equal([one, two]);
        expect(splitCrls([one + two, one])).to.deep.equal([one, two, one]);
        expect(splitCrls(one)).to.equal(one);
        expect(splitCrls(undefined)).to.equal(undefined);
      });
    });

    describe('values 0.1.6 accepted', () => {
      it('takes a decimal string port and makes it a number', () => {
        expect(resolveOptions({ port: '9742' }).port).to.equal(9742);
        expect(resolveOptions({ port: '0' }).port).to.equal(0);
      });

      it('takes host \'\' as the default host, as 0.1.6 did', () => {
        expect(resolveOptions({ host: '' }).host).to.equal('localhost');
      });
    });

    for (const [what, options, message, kind] of bad) {
      it(`throws a ${kind} naming the option for a bad ${what}`, () => {
        expect(() => resolveOptions(options)).to.throw(kind === 'TypeError' ? TypeError : RangeError, message);
      });
    }
  });

  describe('codes of what the API throws', () => {
    /** What `fn` throws. */
    const thrown = (fn: () => unknown): Error & { code?: unknown } => {
      try {
        fn();
      } catch (error) {
        return error as Error & { code?: unknown };
      }
      throw new Error('did not throw');
    };

    it('gives every bad option of the constructor code ERR_INVALID_OPTION, keeping TypeError or RangeError', () => {
      for (const [what, options, , kind] of bad) {
        const error = thrown(() => new TcpTransport(options as never));
        expect(error.name, what).to.equal(kind);
        expect(error.code, what).to.equal('ERR_INVALID_OPTION');
      }
      expect(thrown(() => new TcpTransport({ keepalive: true } as never)).code).to.equal('ERR_INVALID_OPTION');
    });

    it('keeps Node\'s own code for a TLS option Node itself refuses', () => {
      const error = thrown(() => new TcpTransport({ tls: { ...tlsBase(), ciphers: 5 } } as never));
      expect(error).to.be.instanceOf(TypeError);
      expect(error.code).to.equal('ERR_INVALID_ARG_TYPE');
    });

    it('codes the errors of listen(), close(), setSecureContext() and watchCertificates()', () => {
      const plain = new TcpTransport({ host: '127.0.0.1', port: 0 });
      expect(thrown(() => plain.listen({ port: 'abc' })).code).to.equal('ERR_INVALID_OPTION');
      expect(thrown(() => plain.listen('x' as never, 'y' as never)).code).to.equal('ERR_INVALID_OPTION');
      expect(thrown(() => plain.close('x' as never)).code).to.equal('ERR_INVALID_OPTION');
      expect(thrown(() => plain.setSecureContext({})).code).to.equal('ERR_INVALID_OPTION');
      expect(thrown(() => plain.watchCertificates({ key: 'k', cert: 'c', ca: 'a' })).code).to.equal('ERR_INVALID_OPTION');
      const secure = new TcpTransport({ port: 0, tls: tlsBase() });
      expect(thrown(() => secure.setSecureContext({ crt: 'x' } as never)).code).to.equal('ERR_INVALID_OPTION');
      expect(thrown(() => secure.watchCertificates({ key: 'k' } as never)).code).to.equal('ERR_INVALID_OPTION');
      const sendOnly = new TcpTransport({ port: 0, tls: { ca: tlsBase().ca } });
      expect(thrown(() => sendOnly.listen()).code).to.equal('ERR_INVALID_OPTION');
    });

    it('codes a second listen() ERR_ALREADY_LISTENING', async () => {
      const transport = new TcpTransport({ host: '127.0.0.1', port: 0 });
      transport.listen();
      try {
        const error = thrown(() => transport.listen());
        expect(error.code).to.equal('ERR_ALREADY_LISTENING');
        expect(error.message).to.match(/already listening/);
      } finally {
        await transport.close();
      }
    });
  });
});
