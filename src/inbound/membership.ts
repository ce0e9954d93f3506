/**
 * Proven membership: which peer ids may reach gossipmonger.
 *
 * gossipmonger@0.1.10 makes a peer of every sender and of every id a digest
 * names, keeps it forever, and gossips each round with one peer picked at
 * random among those it thinks live; a peer it has never heard from stays
 * "live" for good. One digest naming 2,045 made-up ids therefore left a node
 * gossiping with ghosts 2,045 rounds out of 2,046, and filled `maxPeers` so
 * that nobody new could join. So an id reaches gossipmonger only once this
 * node has proof of it:
 *
 * - by certificate, under an authorize policy that binds ids ('sender-id', or
 *   a function): inbound, a frame whose sender the policy accepted for the
 *   connection's client certificate; outbound, a connection to an address
 *   whose server certificate the policy accepted for the id. Only those
 *   prove an address for an id, so an address presenting another id's
 *   certificate never gets the id, whoever announced it first.
 * - by contact, without such a policy (plain, TLS with 'any', plaintext during
 *   a migration): a frame whose sender is that id, arriving on a connection
 *   of its own. A connection proves one id at most, its first sender.
 *
 * A digest entry naming an id that is not proven is held back: not passed
 * on, counted; the rest of the message is delivered. When the entry gives an
 * address, the node tries to prove the id there (`probe`, sent by the
 * transport: without identity a digest naming the id at version 0, which a
 * gossipmonger peer answers with its own deltas, i.e. by contact; under a
 * certificate policy an empty digest over a connection that must present the
 * id's certificate before it is written, which proves both ends at once, and
 * with keepAlive is the pooled connection later gossip uses). The next
 * message naming the id after its proof passes it on (the answer itself,
 * when the id answers).
 *
 * Deltas pass as they are: only the sender of a deltas message can become a
 * peer of gossipmonger, which ignores a delta about a peer it does not know.
 * A message whose sender is not proven (a second id on a connection without
 * identity) is held back whole: gossipmonger would make a peer of its sender.
 *
 * Proof attempts are work a remote can make this node do (a connection to an
 * address it names), so they are charged to whoever introduced the id (the
 * sender id under a certificate policy, the source address otherwise): at
 * most `pendingPerIntroducer` under way at once and `proofsPerSecond` begun a
 * second, each (id, address) tried once at a time and not again within
 * RETRY_AFTER of a failure (REFUSED_TTL after a certificate naming another
 * id), at most `maxPending` under way in all (the oldest gives way), and each
 * probe is a send through the outbound gate. Ids over those bounds are held
 * back and counted as refused; a later message naming them introduces them
 * again.
 *
 * Bookkeeping only: the clock and the probe are given by the caller, so the
 * rules are unit-tested with plain values.
 */
import { channels } from '../diagnostics';
import { destinationOf } from '../net/addresses';
import type { DigestEntry, Message, PeerTransportInfo } from '../wire/message';
import type { PeerLedger } from './peer-ledger';

/**
 * After a server presented a certificate that does not name the id, the same
 * id at the same address is not tried again for this long (ms).
 */
export const REFUSED_TTL = 60000;
/**
 * After a proof attempt failed otherwise (unreachable, no answer in time),
 * for this long: a node that is only slow or restarting is tried again soon,
 * and the same made-up entry sent again and again is still probed at most
 * once per this interval (besides the introducer's own limits).
 */
export const RETRY_AFTER = 5000;
/** (id, address) pairs remembered as refused (oldest forgotten first). */
const REFUSED_TRACKED = 4096;
/** Proven ids remembered beyond those passed on (oldest forgotten first: forgetting only costs a new proof). */
const PROVEN_TRACKED = 4096;
/** Proven addresses kept per id (the latest). */
const ADDRESSES_PER_ID = 4;
/** Introducers remembered (one holding nothing whose bucket is full carries no information). */
const INTRODUCERS_TRACKED = 4096;
/** Sources whose contact proofs are counted (the oldest forgotten first: that only gives one its budget back). */
const CONTACT_SOURCES_TRACKED = 16384;

export interface MembershipLimits {
  /** Hold back unproven ids (false: pass every id on, as before; proofs are still recorded). */
  enforce: boolean;
  /** Proof attempts one introducer may have under way at once. */
  pendingPerIntroducer: number;
  /** Proof attempts one introducer may begin per second (bursts of pendingPerIntroducer). */
  proofsPerSecond: number;
  /** A proof attempt not settled within this many ms fails. */
  proofTimeout: number;
  /** Distinct ids one source may prove by contact (gossipmonger keeps each for good). */
  idsPerSource: number;
  /** Proof attempts under way at once, every introducer together. */
  maxPending: number;
}

export type Proof = 'certificate' | 'contact';

/** What the connection a frame came on proves of its sender. */
export interface Origin {
  /** How this frame proves its sender; undefined when it does not (a second id on a connection without identity). */
  proof: Proof | undefined;
  /** Who the unproven ids the message names are charged to: `id:<sender>` under a certificate policy, `source:<address>` otherwise. */
  introducer: string;
}

export interface Admitted {
  /** What to deliver (the digest without held-back entries), or undefined: hold the message back whole. */
  message: Message | undefined;
  /** Senders and digest entries held back from this message. */
  heldBack: number;
}

export interface MembershipHooks {
  /**
   * Begin a proof attempt of `id` at host:port (the transport sends a probe,
   * unless the attempt has settled by then: see isPending, noteProbeSent).
   * False when it cannot be sent yet (this node's own id is not known until
   * gossipmonger first sends); it is sent once setSelf() is called.
   */
  probe (id: string, host: string, port: number): boolean;
  /** The address this node advertises: never probed (an id claimed at it is not ours to prove). */
  ownAddress (): { host: string; port: number };
}

/** A proof attempt under way. */
interface Pending {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly key: string;
  readonly introducer: string;
  readonly since: number;
  probed: boolean;
}

interface IntroducerState {
  pending: number;
  tokens: number;
  at: number;
}

interface ProvenId {
  proof: Proof;
  /** Address keys (`host:port`, host as destinationOf spells it) proven for the id. */
  addresses: string[];
}

export type RefusalReason = 'certificate' | 'unreachable' | 'timeout' | 'evicted' | 'share' | 'rate' | 'recently-refused' | 'ids-per-source';

/** `host:port` with the host spelt one way, or undefined when `transport` names no address. */
function addressKey (transport: PeerTransportInfo | undefined): { host: string; port: number; key: string } | undefined {
  const host = transport?.host;
  const port = transport?.port;
  if (typeof host !== 'string' || host.length === 0 || typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port, key: `${destinationOf(host)}:${port}` };
}

export class Membership {
  /** Proof attempts under way, by `id@address`, oldest first. */
  readonly #pending = new Map<string, Pending>();
  readonly #pendingById = new Map<string, Set<string>>();
  readonly #introducers = new Map<string, IntroducerState>();
  readonly #proven = new Map<string, ProvenId>();
  /** `id@address` -> until when (ms) it is not tried again. */
  readonly #refused = new Map<string, number>();
  /** Without identity: distinct ids each source proved by contact (`source:<address>` -> count). */
  readonly #contactIds = new Map<string, number>();
  #self: string | undefined;
  /** Proof attempts that failed, and introductions turned away (over a bound, or refused recently). */
  refused = 0;
  /** Senders and digest entries held back (not passed on) because their id was not proven. */
  heldBack = 0;
  /** Probes sent (the transport counts them through noteProbeSent). */
  probes = 0;

  constructor (
    readonly limits: MembershipLimits,
    private readonly ledger: PeerLedger,
    private readonly hooks: MembershipHooks,
    private readonly clock: () => number
  ) {}

  /** Ids this node holds proof of (those passed on count once they were proven). */
  get proven (): number {
    return this.#proven.size;
  }

  /** Ids held back now while a proof of them is under way. */
  get pending (): number {
    return this.#pendingById.size;
  }

  /** Whether this node holds proof of `id` (it was passed on under enforcement, or a proof is recorded). */
  isProven (id: string): boolean {
    return this.#proven.has(id) || (this.limits.enforce && this.ledger.has(id));
  }

  /** Whether host:port is an address proven for `id` (by its certificate there, or its own announcement on a proving connection). */
  isProvenAt (id: string, host: string, port: number): boolean {
    const key = addressKey({ host, port })?.key;
    return key !== undefined && this.#proven.get(id)?.addresses.includes(key) === true;
  }

  /**
   * This node's own gossipmonger id (it is never held back, and probes speak
   * as it): known from the first message gossipmonger sends. Probes waiting
   * for it are sent now.
   */
  setSelf (id: string): void {
    if (this.#self === id) return;
    this.#self = id;
    for (const pending of this.#pending.values()) {
      if (!pending.probed && this.hooks.probe(pending.id, pending.host, pending.port)) pending.probed = true;
    }
  }

  /** Whether a proof attempt of `id` at host:port is still under way (a probe not yet sent is then worth sending). */
  isPending (id: string, host: string, port: number): boolean {
    const key = addressKey({ host, port })?.key;
    return key !== undefined && this.#pending.has(`${id}@${key}`);
  }

  /** A probe went out (the transport may drop one whose attempt settled while it waited). */
  noteProbeSent (): void {
    this.probes++;
  }

  /**
   * A certificate the authorize policy accepted for `id`: outbound, the
   * server at `address` (the address is then proven for the id); inbound, the
   * client that sent as `id` (its own announced `address`, if any, is kept).
   */
  proveByCertificate (id: string, address?: PeerTransportInfo, direction: 'inbound' | 'outbound' = 'outbound'): void {
    this.#prove(id, 'certificate', direction, address);
  }

  /** A frame from `id` on a connection of its own (no identity): `address` is what it announced. */
  proveByContact (id: string, address?: PeerTransportInfo): void {
    this.#prove(id, 'contact', 'inbound', address);
  }

  /** The server at host:port presented a certificate the policy refused for `id`: the address does not get the id. */
  refuse (id: string, host: string, port: number, reason: RefusalReason = 'certificate'): void {
    const key = addressKey({ host, port });
    if (key === undefined) return;
    const pending = this.#pending.get(`${id}@${key.key}`);
    if (pending !== undefined) this.#fail(pending, reason, true);
    else if (reason === 'certificate') this.#noteRefused(`${id}@${key.key}`, REFUSED_TTL);
  }

  /**
   * A send to `id` at host:port failed before it was delivered: the proof
   * attempt sent there has failed. `everyIdThere`: the send went over a
   * connection every id at that address shares (a pool keyed by address),
   * whose failure is reported once, naming the last id it was sending to;
   * every attempt sent there has failed.
   */
  sendFailed (id: string, host: string, port: number, everyIdThere = false): void {
    const address = addressKey({ host, port });
    if (address === undefined) return;
    const own = this.#pending.get(`${id}@${address.key}`);
    if (own !== undefined && own.probed) this.#fail(own, 'unreachable', true);
    if (!everyIdThere) return;
    const suffix = `@${address.key}`;
    for (const pending of [...this.#pending.values()]) {
      if (pending.probed && pending.key.endsWith(suffix) && pending.key.length === pending.id.length + suffix.length) this.#fail(pending, 'unreachable', true);
    }
  }

  /**
   * A valid message from a connection (`origin`): proves its sender when the
   * connection does, then holds back what names ids that are not proven.
   */
  admit (message: Message, origin: Origin): Admitted {
    const sender = message.sender;
    const enforce = this.limits.enforce;
    // No peer sends as this node: gossipmonger would make a peer of itself.
    // (Nor does a probe that reached this node's own address under another name.)
    const asSelf = sender.id === this.#self;
    // Without identity anyone can be anyone: a source proves a bounded number of ids by contact.
    const overBudget = enforce && origin.proof === 'contact' && !asSelf && !this.#passes(sender.id) && !this.#chargeContact(origin.introducer);
    if (origin.proof !== undefined && !asSelf && !overBudget) this.#prove(sender.id, origin.proof, 'inbound', sender.transport);
    if (!enforce) return { message, heldBack: 0 };
    if (asSelf || overBudget || (origin.proof === undefined && !this.#passes(sender.id))) {
      if (overBudget) this.#noteTurnedAway(origin.introducer, { 'ids-per-source': 1 });
      const held = 1 + (message.digest?.length ?? 0);
      this.heldBack += held;
      return { message: undefined, heldBack: held };
    }
    const digest = message.digest;
    if (digest === undefined) return { message, heldBack: 0 };
    let kept: DigestEntry[] | undefined;
    let turnedAway: Partial<Record<RefusalReason, number>> | undefined;
    for (let i = 0; i < digest.length; i++) {
      const entry = digest[i]!;
      // The sender itself: gossipmonger makes a peer of it (with its own address) before it reads the digest.
      if (entry.id === sender.id || this.#entryPasses(entry)) {
        kept?.push(entry);
        continue;
      }
      // First held back: copy what came before; common messages never get here.
      if (kept === undefined) kept = digest.slice(0, i);
      const refusal = this.#introduce(entry, origin.introducer);
      if (refusal !== undefined) (turnedAway ??= {})[refusal] = (turnedAway[refusal] ?? 0) + 1;
    }
    if (turnedAway !== undefined) this.#noteTurnedAway(origin.introducer, turnedAway);
    if (kept === undefined) return { message, heldBack: 0 };
    const held = digest.length - kept.length;
    this.heldBack += held;
    return { message: { sender, digest: kept }, heldBack: held };
  }

  /** Fails proof attempts past proofTimeout; forgets expired refusals and idle introducers. */
  sweep (): void {
    const now = this.clock();
    const { proofTimeout, proofsPerSecond, pendingPerIntroducer } = this.limits;
    // Insertion order is age order: stop at the first one still in time.
    for (const pending of this.#pending.values()) {
      if (pending.since + proofTimeout > now) break;
      this.#fail(pending, 'timeout', true);
    }
    for (const [key, until] of this.#refused) {
      if (until <= now) this.#refused.delete(key);
    }
    for (const [introducer, state] of this.#introducers) {
      if (state.pending === 0 && state.tokens + (now - state.at) * proofsPerSecond / 1000 >= pendingPerIntroducer) this.#introducers.delete(introducer);
    }
  }

  // ------------------------------------------------------------ internals

  /**
   * Charges a new id proven by contact to its source; false when the source
   * has proven idsPerSource already (gossipmonger would keep every one).
   */
  #chargeContact (source: string): boolean {
    const used = this.#contactIds.get(source) ?? 0;
    if (used >= this.limits.idsPerSource) return false;
    if (used === 0 && this.#contactIds.size >= CONTACT_SOURCES_TRACKED) this.#contactIds.delete(this.#contactIds.keys().next().value!);
    this.#contactIds.set(source, used + 1);
    return true;
  }

  /** Passed on already (gossipmonger knows it), this node itself, or proven. */
  #passes (id: string): boolean {
    return id === this.#self || this.ledger.has(id) || this.#proven.has(id);
  }

  /**
   * A digest entry passes when gossipmonger knows the id already (its
   * address is then ignored), it is this node, or the id is proven at the
   * address the entry gives (gossipmonger keeps the first address it hears
   * for an id, so that one must be proven).
   */
  #entryPasses (entry: DigestEntry): boolean {
    const id = entry.id;
    if (id === this.#self || this.ledger.has(id)) return true;
    const proven = this.#proven.get(id);
    if (proven === undefined) return false;
    const key = addressKey(entry.transport)?.key;
    return key !== undefined && proven.addresses.includes(key);
  }

  /** Begins a proof attempt for a held-back entry, charged to `introducer`; the reason when it is turned away. */
  #introduce (entry: DigestEntry, introducer: string): RefusalReason | undefined {
    const address = addressKey(entry.transport);
    // Without an address nothing can be tried: the id waits for its own contact.
    // Proven at another address: it waits for a message naming that one.
    if (address === undefined || this.#proven.has(entry.id)) return undefined;
    const own = this.hooks.ownAddress();
    if (address.port === own.port && address.key === `${destinationOf(own.host)}:${own.port}`) return undefined;
    const key = `${entry.id}@${address.key}`;
    if (this.#pending.has(key)) return undefined;
    const now = this.clock();
    const until = this.#refused.get(key);
    if (until !== undefined && until > now) return 'recently-refused';
    const state = this.#introducer(introducer, now);
    if (state.pending >= this.limits.pendingPerIntroducer) return 'share';
    if (state.tokens < 1) return 'rate';
    if (this.#pending.size >= this.limits.maxPending) this.#fail(this.#pending.values().next().value!, 'evicted', false);
    state.pending++;
    state.tokens--;
    const pending: Pending = { id: entry.id, host: address.host, port: address.port, key, introducer, since: now, probed: false };
    this.#pending.set(key, pending);
    let keys = this.#pendingById.get(entry.id);
    if (keys === undefined) this.#pendingById.set(entry.id, keys = new Set());
    keys.add(key);
    if (this.#self !== undefined && this.hooks.probe(pending.id, pending.host, pending.port)) pending.probed = true;
    return undefined;
  }

  /** The introducer's bucket, refilled to `now`. */
  #introducer (introducer: string, now: number): IntroducerState {
    const { proofsPerSecond, pendingPerIntroducer } = this.limits;
    let state = this.#introducers.get(introducer);
    if (state === undefined) {
      if (this.#introducers.size >= INTRODUCERS_TRACKED) this.#forgetIdleIntroducer();
      state = { pending: 0, tokens: pendingPerIntroducer, at: now };
      this.#introducers.set(introducer, state);
    } else {
      // Time never runs backwards here: a clock stepped back must not drain a bucket.
      state.tokens = Math.min(pendingPerIntroducer, state.tokens + Math.max(0, now - state.at) * proofsPerSecond / 1000);
      state.at = now;
    }
    return state;
  }

  /** Forgets the longest-known introducer with nothing under way (forgetting one only refills its bucket). */
  #forgetIdleIntroducer (): void {
    for (const [introducer, state] of this.#introducers) {
      if (state.pending === 0) {
        this.#introducers.delete(introducer);
        return;
      }
    }
  }

  #prove (id: string, proof: Proof, direction: 'inbound' | 'outbound', address: PeerTransportInfo | undefined): void {
    const key = addressKey(address)?.key;
    let known = this.#proven.get(id);
    const isNew = known === undefined;
    if (known === undefined) {
      known = { proof, addresses: [] };
      if (this.#proven.size >= PROVEN_TRACKED) this.#proven.delete(this.#proven.keys().next().value!);
    } else {
      // Recently proven last: the oldest proof is the first forgotten.
      this.#proven.delete(id);
      if (proof === 'certificate') known.proof = proof;
    }
    this.#proven.set(id, known);
    const newAddress = key !== undefined && !known.addresses.includes(key);
    if (newAddress) {
      known.addresses.push(key);
      if (known.addresses.length > ADDRESSES_PER_ID) known.addresses.shift();
    }
    if ((isNew || (newAddress && direction === 'outbound')) && channels.peerProven.hasSubscribers) {
      channels.peerProven.publish({ id, proof, direction, host: address?.host, port: address?.port });
    }
    // Settle the attempts this proof answers: outbound, the one at that
    // address; inbound, every one (the id's own message passes it on).
    const keys = this.#pendingById.get(id);
    if (keys === undefined) return;
    for (const pendingKey of [...keys]) {
      if (direction === 'outbound' && pendingKey !== `${id}@${key}`) continue;
      this.#settle(this.#pending.get(pendingKey)!);
    }
  }

  /** Ends an attempt: it no longer counts against its introducer or the total. */
  #settle (pending: Pending): void {
    this.#pending.delete(pending.key);
    const keys = this.#pendingById.get(pending.id);
    keys?.delete(pending.key);
    if (keys?.size === 0) this.#pendingById.delete(pending.id);
    const state = this.#introducers.get(pending.introducer);
    if (state !== undefined && state.pending > 0) state.pending--;
  }

  /** A failed attempt: counted, published, and (unless it only made room) not tried again for a while (RETRY_AFTER, or REFUSED_TTL after a certificate). */
  #fail (pending: Pending, reason: RefusalReason, remember: boolean): void {
    this.#settle(pending);
    this.refused++;
    if (remember) this.#noteRefused(pending.key, reason === 'certificate' ? REFUSED_TTL : RETRY_AFTER);
    if (channels.peerRefused.hasSubscribers) {
      channels.peerRefused.publish({ id: pending.id, host: pending.host, port: pending.port, introducer: pending.introducer, reason, count: 1 });
    }
  }

  #noteRefused (key: string, ttl: number): void {
    this.#refused.delete(key);
    if (this.#refused.size >= REFUSED_TRACKED) this.#refused.delete(this.#refused.keys().next().value!);
    this.#refused.set(key, this.clock() + ttl);
  }

  /** Introductions of one message turned away without an attempt: counted, and published once per reason. */
  #noteTurnedAway (introducer: string, counts: Partial<Record<RefusalReason, number>>): void {
    for (const [reason, count] of Object.entries(counts) as Array<[RefusalReason, number]>) {
      this.refused += count;
      if (channels.peerRefused.hasSubscribers) channels.peerRefused.publish({ id: undefined, introducer, reason, count });
    }
  }
}
