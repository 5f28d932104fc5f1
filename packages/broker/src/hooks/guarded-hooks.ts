import { ReasonCode } from '@fleetward/protocol';
import type { Message, Subscription } from '../message.js';
import type { BrokerCounters } from '../engine/broker-counters.js';
import type {
  Admission,
  AuthenticationRequest,
  AuthenticationStep,
  Awaitable,
  BrokerHooks,
  ClientRef,
  ConnectionInfo,
  ConnectRequest,
  ConnectRefusalCode,
  HookName,
  LimitEvent,
  PayloadRewrite,
  PublishRefusalCode,
  PublishVerdict,
  SubscribeRefusalCode,
  Verdict,
} from './broker-hooks.js';
import { securityHookNames } from './broker-hooks.js';

export interface Refused<R extends number> {
  readonly reasonCode: R;
  readonly reasonString?: string;
}

/** A hook's answer once checked: `true`, or the refusal to send. */
export type Decided<R extends number> = true | Refused<R>;

/** `authorizePublish`'s answer once checked: allowed (perhaps with another payload), or refused. */
export type PublishDecided = Decided<PublishRefusalCode> | PayloadRewrite;

const connectCodes: ReadonlySet<number> = new Set([0x80, 0x83, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x97, 0x9c, 0x9d, 0x9f]);
const publishCodes: ReadonlySet<number> = new Set([0x80, 0x83, 0x87, 0x90, 0x97, 0x99]);
const subscribeCodes: ReadonlySet<number> = new Set([0x80, 0x83, 0x87, 0x8f, 0x97, 0x9e, 0xa1, 0xa2]);
const authenticationCodes: ReadonlySet<number> = new Set([0x80, 0x86, 0x87, 0x8c]);

const notAuthorized = Object.freeze({ reasonCode: ReasonCode.NotAuthorized });
const hookFailed: Refused<0x80> = Object.freeze({ reasonCode: ReasonCode.UnspecifiedError });

/** Throws unless every mandatory security hook is a function: the broker has no default policy. */
export function requireSecurityHooks(hooks: unknown): void {
  if (typeof hooks !== 'object' || hooks === null) throw new TypeError('createBroker needs its security hooks');
  const missing = securityHookNames.filter((name) => typeof (hooks as Record<string, unknown>)[name] !== 'function');
  if (missing.length > 0) throw new TypeError(`createBroker is missing mandatory hooks: ${missing.join(', ')}`);
}

/**
 * The hooks as the engine calls them: each answer is checked, and anything but an explicit
 * allowance denies, including a throw or a rejection (reported to `onError` and counted). Answers
 * given synchronously stay synchronous, so an allow-all policy costs no promise per message.
 */
export class GuardedHooks<C> {
  readonly #hooks: BrokerHooks<C>;
  readonly #counters: BrokerCounters;

  constructor(hooks: BrokerHooks<C>, counters: BrokerCounters) {
    requireSecurityHooks(hooks);
    this.#hooks = hooks;
    this.#counters = counters;
  }

  get supportsAuthentication(): boolean {
    return typeof this.#hooks.authenticate === 'function';
  }

  admit(connect: ConnectRequest, connection: ConnectionInfo): Awaitable<Admission<C>> {
    // A failing admission hook is the server's trouble, not the client's: 0x88 invites a retry later.
    const failed: Admission<C> = { admit: false, reasonCode: ReasonCode.ServerUnavailable };
    return this.#call('admit', failed, () => this.#hooks.admit(connect, connection), (answer) => checkAdmission(answer));
  }

  authenticate(request: AuthenticationRequest): Awaitable<AuthenticationStep> {
    const failed: AuthenticationStep = { outcome: 'failure', reasonCode: ReasonCode.NotAuthorized };
    const hook = this.#hooks.authenticate;
    if (hook === undefined) return { outcome: 'failure', reasonCode: ReasonCode.BadAuthenticationMethod };
    return this.#call('authenticate', failed, () => hook(request), (answer) => checkAuthenticationStep(answer));
  }

  authorizePublish(client: ClientRef<C>, message: Message): Awaitable<PublishDecided> {
    // On the hot path: no closure is made unless the hook answers with a promise.
    let answer: Awaitable<PublishVerdict>;
    try {
      answer = this.#hooks.authorizePublish(client, message);
    } catch (error) {
      this.#report(error, 'authorizePublish');
      return hookFailed;
    }
    if (answer === true) return true;
    if (!isPromiseLike(answer)) return checkPublishVerdict(answer);
    return this.#settle(answer, 'authorizePublish', hookFailed, checkPublishVerdict);
  }

  authorizeSubscribe(client: ClientRef<C>, subscription: Subscription): Awaitable<Decided<SubscribeRefusalCode>> {
    return this.#call<Verdict<SubscribeRefusalCode>, Decided<SubscribeRefusalCode>>('authorizeSubscribe', hookFailed, () => this.#hooks.authorizeSubscribe(client, subscription), (answer) => checkVerdict(answer, subscribeCodes));
  }

  authorizeDelivery(client: ClientRef<C>, message: Message): Awaitable<boolean> {
    // Once per message per subscriber: no closure is made unless the hook answers with a promise.
    let answer: Awaitable<boolean>;
    try {
      answer = this.#hooks.authorizeDelivery(client, message);
    } catch (error) {
      this.#report(error, 'authorizeDelivery');
      return false;
    }
    if (!isPromiseLike(answer)) return answer === true;
    return this.#settle(answer, 'authorizeDelivery', false, (settled) => settled === true);
  }

  limit(event: LimitEvent): void {
    this.#counters.countLimit(event.limit);
    try {
      this.#hooks.onLimit?.(event);
    } catch (error) {
      this.#report(error, undefined);
    }
  }

  #call<A, T>(name: HookName, failed: T, call: () => Awaitable<A>, check: (answer: A) => T): Awaitable<T> {
    let answer: Awaitable<A>;
    try {
      answer = call();
    } catch (error) {
      this.#report(error, name);
      return failed;
    }
    if (!isPromiseLike(answer)) return check(answer);
    return this.#settle(answer, name, failed, check);
  }

  #settle<A, T>(answer: Promise<A>, name: HookName, failed: T, check: (answer: A) => T): Promise<T> {
    return Promise.resolve(answer).then(check, (error: unknown) => {
      this.#report(error, name);
      return failed;
    });
  }

  #report(error: unknown, hook: HookName | undefined): void {
    if (hook !== undefined) this.#counters.hookErrors[hook]++;
    try {
      if (hook !== undefined) this.#hooks.onError?.(error, hook);
    } catch {
      // An observer that throws must not take the broker down; its failure is already counted.
    }
  }
}

function isPromiseLike<T>(value: Awaitable<T>): value is Promise<T> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function checkVerdict<R extends number>(answer: unknown, codes: ReadonlySet<number>): Decided<R> {
  if (answer === true) return true;
  if (typeof answer === 'object' && answer !== null) {
    const { reasonCode, reasonString } = answer as { reasonCode?: unknown; reasonString?: unknown };
    if (typeof reasonCode === 'number' && codes.has(reasonCode)) {
      return typeof reasonString === 'string' ? { reasonCode: reasonCode as R, reasonString } : { reasonCode: reasonCode as R };
    }
  }
  return notAuthorized as Refused<R>;
}

/** A rewrite allows only with a real Buffer and no refusal code alongside; anything else is a Verdict. */
function checkPublishVerdict(answer: unknown): PublishDecided {
  if (typeof answer === 'object' && answer !== null && 'payload' in answer && !('reasonCode' in answer)) {
    const { payload } = answer;
    return Buffer.isBuffer(payload) ? { payload } : notAuthorized;
  }
  return checkVerdict(answer, publishCodes);
}

function checkAdmission<C>(answer: Admission<C>): Admission<C> {
  if (typeof answer !== 'object' || answer === null) return { admit: false, reasonCode: ReasonCode.NotAuthorized };
  if (answer.admit === true) return answer;
  const refused = checkVerdict<ConnectRefusalCode>(answer, connectCodes);
  return { admit: false, ...(refused === true ? notAuthorized : refused) };
}

function checkAuthenticationStep(answer: AuthenticationStep): AuthenticationStep {
  if (typeof answer === 'object' && answer !== null && (answer.outcome === 'continue' || answer.outcome === 'success')) return answer;
  const code = (answer as { reasonCode?: unknown } | null)?.reasonCode;
  return { outcome: 'failure', reasonCode: typeof code === 'number' && authenticationCodes.has(code) ? (code as 0x80) : ReasonCode.NotAuthorized };
}
