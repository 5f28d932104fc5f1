import { OTHER_KEY, type RefusalSummary } from './refusal-aggregator.js';
import type { ThrottleRefusal } from './refusal-codes.js';

/**
 * Who was refused: a thing (connect, publish, subscribe refusals: it authenticated), a source
 * (handshake refusals: nothing is known but the address key), or `other`, the sum of subjects
 * that had to make room in the bounded table during a flood from many subjects.
 */
export type RefusalSubject = 'thing' | 'source' | 'other';

/** One audit record for many refusals of one subject within one interval. */
export interface ThrottleSummary {
  readonly subject: RefusalSubject;
  /** The thing name or source key (`192.0.2.7`, `2001:db8:0:1::/64`); empty for `other`. */
  readonly name: string;
  readonly counts: Readonly<Partial<Record<ThrottleRefusal, number>>>;
  readonly total: number;
  /** First and last refusal counted (epoch ms). */
  readonly firstAt: number;
  readonly lastAt: number;
  /** For `other`: how many subjects were folded into it. */
  readonly subjectsFolded: number;
}

/*
 * One table holds both subjects, so keys carry a fixed prefix: a thing named like an address
 * ("192.0.2.7") cannot share a count with that source.
 */
const THING_PREFIX = 't:';
const SOURCE_PREFIX = 's:';

export function thingKey(thing: string): string {
  return THING_PREFIX + thing;
}

export function sourceSubjectKey(source: string): string {
  return SOURCE_PREFIX + source;
}

export function toThrottleSummary(summary: RefusalSummary<ThrottleRefusal>): ThrottleSummary {
  const { key, counts, total, firstAt, lastAt, keysFolded } = summary;
  if (key === OTHER_KEY) return { subject: 'other', name: '', counts, total, firstAt, lastAt, subjectsFolded: keysFolded };
  const subject: RefusalSubject = key.startsWith(THING_PREFIX) ? 'thing' : 'source';
  return { subject, name: key.slice(THING_PREFIX.length), counts, total, firstAt, lastAt, subjectsFolded: 0 };
}

/** "thing dev-1: 5,312 refusals (message-rate 5,300, byte-rate 12), 12:00:00.000–12:00:09.870 UTC". */
export function describeThrottleSummary(summary: ThrottleSummary): string {
  const n = (value: number): string => value.toLocaleString('en-US');
  const who = summary.subject === 'other' ? `${n(summary.subjectsFolded)} other things and sources` : `${summary.subject} ${summary.name}`;
  const reasons = Object.entries(summary.counts).map(([reason, count]) => `${reason} ${n(count)}`).join(', ');
  return `${who}: ${n(summary.total)} refusals (${reasons}), ${timeOfDay(summary.firstAt)}–${timeOfDay(summary.lastAt)} UTC`;
}

function timeOfDay(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(11, 23);
}
