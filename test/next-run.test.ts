import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { nextRun, upcomingRuns, validateSchedule, ValidationError } from '../src/index.js';
import { dueRun, runAt } from '../src/schedule-rules.js';
import { fromWall, toWall } from '../src/time.js';

const d = (iso: string) => new Date(iso);
const iso = (date: Date) => date.toISOString();
/** A `now` before every schedule here: no slot is older than the catch-up window. */
const early = d('2000-01-01T00:00:00Z');

const Types = suite('nextRun: each schedule type');

Types('Minutes adds the minutes, Hourly an hour of real time', () => {
  assert.is(
    iso(nextRun({ scheduleType: 'I', minutes: 15, nextRun: d('2026-01-01T10:00:00Z') }, { now: early })),
    '2026-01-01T10:15:00.000Z',
  );
  assert.is(iso(nextRun({ scheduleType: 'H', nextRun: d('2026-01-01T10:00:00Z') }, { now: early })), '2026-01-01T11:00:00.000Z');
  // 01:30 EST + 1h is 03:30 EDT on the spring-forward night: an hour of elapsed time, not wall time.
  assert.is(
    iso(nextRun({ scheduleType: 'H', nextRun: d('2026-03-08T06:30:00Z') }, { timeZone: 'America/New_York', now: early })),
    '2026-03-08T07:30:00.000Z',
  );
});

Types('Daily keeps the local time across both DST changes', () => {
  const tz = 'America/New_York';
  // 09:00 EST = 14:00Z on 7 March; 09:00 EDT = 13:00Z on 8 March.
  assert.is(
    iso(nextRun({ scheduleType: 'D', nextRun: d('2026-03-07T14:00:00Z') }, { timeZone: tz, now: early })),
    '2026-03-08T13:00:00.000Z',
  );
  // 31 October 09:00 EDT → 1 November 09:00 EST.
  assert.is(
    iso(nextRun({ scheduleType: 'D', nextRun: d('2026-10-31T13:00:00Z') }, { timeZone: tz, now: early })),
    '2026-11-01T14:00:00.000Z',
  );
  // Europe/Berlin, 29 March 2026: 08:00 CET (07:00Z) → 08:00 CEST (06:00Z).
  assert.is(
    iso(nextRun({ scheduleType: 'D', nextRun: d('2026-03-28T07:00:00Z') }, { timeZone: 'Europe/Berlin', now: early })),
    '2026-03-29T06:00:00.000Z',
  );
});

Types('a daily time that does not exist on the spring-forward day runs when the gap ends, then is back at its time', () => {
  const tz = 'America/New_York';
  // 02:30 EST on 7 March (07:30Z); 8 March has no 02:30: the run is at 03:00 EDT (07:00Z), the first valid instant.
  assert.is(
    iso(nextRun({ scheduleType: 'D', nextRun: d('2026-03-07T07:30:00Z') }, { timeZone: tz, now: early })),
    '2026-03-08T07:00:00.000Z',
  );
  // The anchor keeps the wall-clock time: 9 March is 02:30 EDT again (06:30Z).
  const s = { scheduleType: 'D' as const, anchor: d('2026-03-07T07:30:00Z'), nextRun: d('2026-03-08T07:00:00Z') };
  assert.is(iso(nextRun(s, { timeZone: tz, now: early })), '2026-03-09T06:30:00.000Z');
});

Types('Weekly and Biweekly add 7 and 14 calendar days', () => {
  const tz = 'Europe/London';
  // 9:00 GMT on 22 March → 9:00 BST on 29 March (DST starts that morning).
  assert.is(
    iso(nextRun({ scheduleType: 'W', nextRun: d('2026-03-22T09:00:00Z') }, { timeZone: tz, now: early })),
    '2026-03-29T08:00:00.000Z',
  );
  assert.is(
    iso(nextRun({ scheduleType: 'BW', nextRun: d('2026-03-22T09:00:00Z') }, { timeZone: tz, now: early })),
    '2026-04-05T08:00:00.000Z',
  );
});

Types('Monthly from 31 January clamps to February and goes back to 31 March', () => {
  const runs = upcomingRuns({ scheduleType: 'M', nextRun: d('2026-01-31T12:00:00Z') }, 5);
  assert.equal(runs.map(iso), [
    '2026-01-31T12:00:00.000Z',
    '2026-02-28T12:00:00.000Z',
    '2026-03-31T12:00:00.000Z',
    '2026-04-30T12:00:00.000Z',
    '2026-05-31T12:00:00.000Z',
  ]);
  // A mid-month day is kept as it is.
  assert.equal(upcomingRuns({ scheduleType: 'M', nextRun: d('2026-01-15T12:00:00Z') }, 3).map(iso), [
    '2026-01-15T12:00:00.000Z',
    '2026-02-15T12:00:00.000Z',
    '2026-03-15T12:00:00.000Z',
  ]);
});

Types('Bimonthly, Quarterly and Yearly step 2, 3 and 12 months', () => {
  assert.is(iso(nextRun({ scheduleType: 'BM', nextRun: d('2026-12-31T00:00:00Z') }, { now: early })), '2027-02-28T00:00:00.000Z');
  assert.is(iso(nextRun({ scheduleType: 'Q', nextRun: d('2026-11-30T00:00:00Z') }, { now: early })), '2027-02-28T00:00:00.000Z');
  assert.is(iso(nextRun({ scheduleType: 'Y', nextRun: d('2028-02-29T06:00:00Z') }, { now: early })), '2029-02-28T06:00:00.000Z');
  assert.is(iso(nextRun({ scheduleType: 'Y', nextRun: d('2026-07-04T06:00:00Z') }, { now: early })), '2027-07-04T06:00:00.000Z');
});

Types('Monthly keeps local time when the month crosses a DST change', () => {
  const tz = 'America/New_York';
  // 15 Feb 08:00 EST (13:00Z) → 15 Mar 08:00 EDT (12:00Z).
  assert.is(
    iso(nextRun({ scheduleType: 'M', nextRun: d('2026-02-15T13:00:00Z') }, { timeZone: tz, now: early })),
    '2026-03-15T12:00:00.000Z',
  );
});

Types('Cron finds the next match in the time zone', () => {
  // 03:00 every day in Tokyo is 18:00Z the day before.
  assert.is(
    iso(nextRun({ scheduleType: 'C', cron: '0 3 * * *', nextRun: d('2026-05-01T18:00:00Z') }, { timeZone: 'Asia/Tokyo', now: early })),
    '2026-05-02T18:00:00.000Z',
  );
  assert.is(
    iso(nextRun({ scheduleType: 'C', cron: '*/10 * * * *', nextRun: d('2026-05-01T10:00:00Z') }, { now: early })),
    '2026-05-01T10:10:00.000Z',
  );
});

Types('Once keeps its time', () => {
  assert.is(iso(nextRun({ scheduleType: 'O', nextRun: d('2026-05-01T10:00:00Z') }, { now: early })), '2026-05-01T10:00:00.000Z');
});

Types.run();

const CatchUp = suite('nextRun: catchUp');
const now = d('2026-06-01T12:00:00Z');

CatchUp('true takes one step from the missed run, so each missed slot runs', () => {
  const s = { scheduleType: 'I' as const, minutes: 10, nextRun: d('2026-06-01T11:25:00Z') };
  assert.is(iso(nextRun(s, { now, catchUp: true })), '2026-06-01T11:35:00.000Z');
});

CatchUp('false jumps to the first slot after now, on the same grid', () => {
  assert.is(
    iso(nextRun({ scheduleType: 'I', minutes: 10, nextRun: d('2026-06-01T11:25:00Z') }, { now, catchUp: false })),
    '2026-06-01T12:05:00.000Z',
  );
  assert.is(iso(nextRun({ scheduleType: 'H', nextRun: d('2026-06-01T02:30:00Z') }, { now, catchUp: false })), '2026-06-01T12:30:00.000Z');
  assert.is(iso(nextRun({ scheduleType: 'D', nextRun: d('2026-05-20T09:00:00Z') }, { now, catchUp: false })), '2026-06-02T09:00:00.000Z');
  assert.is(
    iso(nextRun({ scheduleType: 'C', cron: '0 * * * *', nextRun: d('2026-05-20T09:00:00Z') }, { now, catchUp: false })),
    '2026-06-01T13:00:00.000Z',
  );
  assert.is(iso(nextRun({ scheduleType: 'M', nextRun: d('2026-01-31T09:00:00Z') }, { now, catchUp: false })), '2026-06-30T09:00:00.000Z');
});

CatchUp.run();

const Zones = suite('wall-clock conversion');

Zones('an ambiguous time (clocks going back) is its earlier instant', () => {
  const t = fromWall({ year: 2026, month: 11, day: 1, hour: 1, minute: 30, second: 0, millisecond: 0 }, 'America/New_York');
  assert.is(iso(t), '2026-11-01T05:30:00.000Z');
  assert.equal(toWall(t, 'America/New_York').hour, 1);
});

Zones.run();

const Validate = suite('validateSchedule');

Validate('an edit keeps stored fields and recomputes next run when the cron changes', () => {
  const previous = validateSchedule({ func: 'f', scheduleType: 'D', nextRun: '2030-01-01T00:00:00Z' });
  const edited = validateSchedule({ scheduleType: 'C', cron: '0 5 * * *' }, { previous, now: d('2030-01-01T06:00:00Z') });
  assert.is(edited.func, 'f');
  assert.is(iso(edited.nextRun), '2030-01-02T05:00:00.000Z');
  const given = validateSchedule({ scheduleType: 'C', cron: '0 5 * * *', nextRun: '2031-01-01T00:00:00Z' }, { previous });
  assert.is(iso(given.nextRun), '2031-01-01T00:00:00.000Z');
  const renamed = validateSchedule({ name: 'x' }, { previous });
  assert.is(iso(renamed.nextRun), '2030-01-01T00:00:00.000Z');
});

Validate('args and kwargs accept JSON text from a form', () => {
  const v = validateSchedule({ func: 'f', args: '[1, "a"]', kwargs: '{"k": true}', nextRun: '2030-01-01T00:00:00Z', repeats: '24' });
  assert.equal(v.args, [1, 'a']);
  assert.equal(v.kwargs, { k: true });
  assert.is(v.repeats, 24);
});

Validate('each bad field gets its own message', () => {
  try {
    validateSchedule({ func: 'f', args: 'not json', scheduleType: 'X', repeats: 1.5, nextRun: 'soon', name: 'n'.repeat(101) });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, ValidationError);
    const errors = (e as ValidationError).errors;
    assert.equal(Object.keys(errors).sort(), ['args', 'name', 'nextRun', 'repeats', 'scheduleType']);
  }
  try {
    validateSchedule('nope');
    assert.unreachable();
  } catch (e) {
    assert.ok((e as ValidationError).errors.body);
  }
});

Validate('hook must be registered when the registry is known', () => {
  try {
    validateSchedule({ func: 'f', hook: 'h', nextRun: '2030-01-01T00:00:00Z' }, { tasks: { f: 1 } });
    assert.unreachable();
  } catch (e) {
    assert.match((e as ValidationError).errors.hook!, /not a registered task/);
  }
});

Validate.run();

/** Before any anchor here: nothing is old enough to fall out of the catch-up window. */
const dawn = d('0001-01-01T00:00:00Z');

/** Steps a schedule `n` times the way the scheduler does: each step from the last run, the anchor kept. */
function steps(s: Parameters<typeof nextRun>[0], n: number, options: Parameters<typeof nextRun>[1] = {}): string[] {
  const runs = [s.nextRun];
  const anchor = s.anchor ?? s.nextRun;
  for (let i = 0; i < n; i++) runs.push(nextRun({ ...s, anchor, nextRun: runs[i]! }, { now: dawn, ...options }));
  return runs.map(iso);
}

const Anchor = suite('anchored series');

Anchor('Monthly counts from the anchor: month ends clamp and come back, a 30th stays the 30th', () => {
  // UTC: 31 Jan → 28 Feb → 31 Mar → 30 Apr → 31 May.
  assert.equal(steps({ scheduleType: 'M', nextRun: d('2026-01-31T09:00:00Z') }, 4), [
    '2026-01-31T09:00:00.000Z',
    '2026-02-28T09:00:00.000Z',
    '2026-03-31T09:00:00.000Z',
    '2026-04-30T09:00:00.000Z',
    '2026-05-31T09:00:00.000Z',
  ]);
  // Leap year: 31 Jan 2028 → 29 Feb.
  assert.is(steps({ scheduleType: 'M', nextRun: d('2028-01-31T09:00:00Z') }, 1)[1], '2028-02-29T09:00:00.000Z');
  // Europe/Amsterdam, 30 April 09:00 CEST (07:00Z) → 30 May → 30 June → 30 July, never 31.
  assert.equal(steps({ scheduleType: 'M', nextRun: d('2026-04-30T07:00:00Z'), timeZone: 'Europe/Amsterdam' }, 3), [
    '2026-04-30T07:00:00.000Z',
    '2026-05-30T07:00:00.000Z',
    '2026-06-30T07:00:00.000Z',
    '2026-07-30T07:00:00.000Z',
  ]);
  // America/New_York: 28 Feb 08:00 EST (13:00Z) → 28 Mar 08:00 EDT (12:00Z), not 31 Mar.
  assert.equal(steps({ scheduleType: 'M', nextRun: d('2026-02-28T13:00:00Z'), timeZone: 'America/New_York' }, 2), [
    '2026-02-28T13:00:00.000Z',
    '2026-03-28T12:00:00.000Z',
    '2026-04-28T12:00:00.000Z',
  ]);
  // Australia/Sydney, 31 Jan 09:00 AEDT (30 Jan 22:00Z) → 28 Feb → 31 Mar (AEDT) → 30 Apr 09:00 AEST (29 Apr 23:00Z).
  assert.equal(steps({ scheduleType: 'M', nextRun: d('2026-01-30T22:00:00Z'), timeZone: 'Australia/Sydney' }, 3), [
    '2026-01-30T22:00:00.000Z',
    '2026-02-27T22:00:00.000Z',
    '2026-03-30T22:00:00.000Z',
    '2026-04-29T23:00:00.000Z',
  ]);
});

Anchor('Yearly from 29 February is 28 February in common years and 29 February in leap years; 28 February stays', () => {
  assert.equal(steps({ scheduleType: 'Y', nextRun: d('2024-02-29T12:00:00Z') }, 4), [
    '2024-02-29T12:00:00.000Z',
    '2025-02-28T12:00:00.000Z',
    '2026-02-28T12:00:00.000Z',
    '2027-02-28T12:00:00.000Z',
    '2028-02-29T12:00:00.000Z',
  ]);
  assert.equal(steps({ scheduleType: 'Y', nextRun: d('2027-02-28T12:00:00Z') }, 1), [
    '2027-02-28T12:00:00.000Z',
    '2028-02-28T12:00:00.000Z',
  ]);
  // Quarterly and Bimonthly count from the anchor too: 30 Nov → 28 Feb → 30 May; 31 Dec → 28 Feb → 30 Apr.
  assert.equal(steps({ scheduleType: 'Q', nextRun: d('2026-11-30T00:00:00Z') }, 2).slice(1), [
    '2027-02-28T00:00:00.000Z',
    '2027-05-30T00:00:00.000Z',
  ]);
  assert.equal(steps({ scheduleType: 'Bimonthly', nextRun: d('2026-12-31T00:00:00Z') }, 2).slice(1), [
    '2027-02-28T00:00:00.000Z',
    '2027-04-30T00:00:00.000Z',
  ]);
});

Anchor('a time in the spring-forward gap runs when the gap ends; the next day is back at the anchor time', () => {
  // Europe/Amsterdam, 29 March 2026: 02:00 CET → 03:00 CEST. Daily at 02:30.
  assert.equal(steps({ scheduleType: 'D', nextRun: d('2026-03-28T01:30:00Z'), timeZone: 'Europe/Amsterdam' }, 2), [
    '2026-03-28T01:30:00.000Z', // 02:30 CET
    '2026-03-29T01:00:00.000Z', // 03:00 CEST, the first instant after the gap
    '2026-03-30T00:30:00.000Z', // 02:30 CEST
  ]);
  // Australia/Sydney, 4 October 2026: 02:00 AEST → 03:00 AEDT. Daily at 02:30.
  assert.equal(steps({ scheduleType: 'D', nextRun: d('2026-10-02T16:30:00Z'), timeZone: 'Australia/Sydney' }, 2), [
    '2026-10-02T16:30:00.000Z',
    '2026-10-03T16:00:00.000Z',
    '2026-10-04T15:30:00.000Z',
  ]);
  // Weekly in New York from a Sunday 02:30 EST: 8 March 2026 has no 02:30.
  assert.equal(steps({ scheduleType: 'W', nextRun: d('2026-03-01T07:30:00Z'), timeZone: 'America/New_York' }, 2).slice(1), [
    '2026-03-08T07:00:00.000Z',
    '2026-03-15T06:30:00.000Z',
  ]);
});

Anchor('a time that occurs twice on the fall-back day runs once, at its first occurrence', () => {
  // Europe/Amsterdam, 25 October 2026: 03:00 CEST → 02:00 CET, so 02:30 happens twice.
  const runs = upcomingRuns({ scheduleType: 'D', nextRun: d('2026-10-24T00:30:00Z'), timeZone: 'Europe/Amsterdam' }, 3).map(iso);
  assert.equal(runs, ['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  // America/New_York, 1 November 2026: 01:30 twice.
  const ny = upcomingRuns({ scheduleType: 'D', nextRun: d('2026-10-31T05:30:00Z'), timeZone: 'America/New_York' }, 3).map(iso);
  assert.equal(ny, ['2026-10-31T05:30:00.000Z', '2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']);
});

Anchor("a schedule's own zone wins over the cluster's: 09:00 in New York stays 09:00 after the DST change", () => {
  const s = { scheduleType: 'D' as const, nextRun: d('2026-03-07T14:00:00Z'), timeZone: 'America/New_York' };
  assert.is(iso(nextRun(s, { timeZone: 'UTC', now: early })), '2026-03-08T13:00:00.000Z');
  // Without its own zone it keeps the cluster's wall clock: 14:00 UTC.
  assert.is(iso(nextRun({ ...s, timeZone: null }, { timeZone: 'UTC', now: early })), '2026-03-08T14:00:00.000Z');
});

Anchor('Cron takes the next match after now whatever catchUp says: an outage replays nothing', () => {
  const now = d('2026-06-03T10:07:00Z');
  const s = { scheduleType: 'C' as const, cron: '*/15 * * * *', nextRun: d('2026-06-01T10:00:00Z') };
  assert.is(iso(nextRun(s, { now, catchUp: true })), '2026-06-03T10:15:00.000Z');
  assert.is(iso(nextRun(s, { now, catchUp: false })), '2026-06-03T10:15:00.000Z');
  assert.is(iso(dueRun(s, { now })), '2026-06-01T10:00:00.000Z', 'the due run itself is the stored one');
  // Cron in a zone: 09:00 Sydney.
  assert.is(
    iso(nextRun({ scheduleType: 'C', cron: '0 9 * * *', nextRun: now, timeZone: 'Australia/Sydney' }, { now })),
    '2026-06-03T23:00:00.000Z',
  );
});

Anchor('catch-up runs at most the most recent maxCatchUp slots', () => {
  const now = d('2026-06-01T12:00:30Z');
  const s = { scheduleType: 'I' as const, minutes: 1, nextRun: d('1970-01-01T00:00:00Z') };
  // The oldest slot still run is 10 minutes back; the one after it comes next.
  assert.is(iso(dueRun(s, { now, maxCatchUp: 10 })), '2026-06-01T11:51:00.000Z');
  assert.is(iso(nextRun(s, { now, maxCatchUp: 10 })), '2026-06-01T11:52:00.000Z');
  // Walking the series from the due run reaches now in exactly maxCatchUp runs.
  let run = dueRun(s, { now, maxCatchUp: 10 });
  let count = 1;
  for (; (run = nextRun({ ...s, nextRun: run }, { now, maxCatchUp: 10 })) <= now; count++);
  assert.is(count, 10);
  // A recent miss is inside the window: every slot runs.
  assert.is(iso(dueRun({ ...s, nextRun: d('2026-06-01T11:58:00Z') }, { now, maxCatchUp: 10 })), '2026-06-01T11:58:00.000Z');
  // Daily in Amsterdam, 400 days behind, default 100: the 100th most recent 02:30.
  const daily = { scheduleType: 'D' as const, nextRun: d('2025-04-27T00:30:00Z'), timeZone: 'Europe/Amsterdam' };
  const due = dueRun(daily, { now });
  assert.is(iso(due), '2026-02-22T01:30:00.000Z');
  assert.is(toWall(due, 'Europe/Amsterdam').hour, 2);
  // catchUp false runs the stored slot once, then the first future slot.
  assert.is(iso(dueRun(daily, { now, catchUp: false })), '2025-04-27T00:30:00.000Z');
  assert.is(iso(nextRun(daily, { now, catchUp: false })), '2026-06-02T00:30:00.000Z');
});

Anchor('the first future slot of a series from year 100 is found arithmetically, in under a millisecond', () => {
  const now = d('2026-06-01T12:00:00Z');
  const s = { scheduleType: 'D' as const, nextRun: d('0100-03-01T09:00:00Z'), timeZone: 'America/New_York' };
  const next = nextRun(s, { now, catchUp: false });
  assert.ok(next > now && next.getTime() - now.getTime() <= 86_400_000, iso(next));
  const anchorWall = toWall(s.nextRun, s.timeZone);
  const wall = toWall(next, s.timeZone);
  assert.equal([wall.hour, wall.minute, wall.second], [anchorWall.hour, anchorWall.minute, anchorWall.second]);
  assert.is(iso(nextRun({ scheduleType: 'Y', nextRun: d('0100-03-01T09:00:00Z') }, { now, catchUp: false })), '2027-03-01T09:00:00.000Z');
  // The bound the rule promises, as a median of repeated runs so one slow moment on a busy machine does not decide it.
  const times: number[] = [];
  for (let i = 0; i < 51; i++) {
    const t = performance.now();
    nextRun(s, { now, catchUp: false });
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  assert.ok(times[25]! < 1, `median ${times[25]} ms`);
});

Anchor('scheduleType takes the code or the name', () => {
  const now = d('2026-06-01T12:00:00Z');
  assert.is(iso(nextRun({ scheduleType: 'Daily', nextRun: now }, { now })), iso(nextRun({ scheduleType: 'D', nextRun: now }, { now })));
  assert.is(validateSchedule({ func: 'f', scheduleType: 'Cron', cron: '0 9 * * *' }).scheduleType, 'C');
  assert.is(validateSchedule({ func: 'f', scheduleType: 'biweekly' }).scheduleType, 'BW');
  assert.throws(() => validateSchedule({ func: 'f', scheduleType: 'Fortnightly' }), /scheduleType: must be one of O \(Once\)/);
});

Anchor.run();

/** mulberry32: a small seeded PRNG, so a failing case can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const Property = suite('anchored series: property');

Property('k single steps from an anchor equal one jump of k periods, in many zones and types', () => {
  const random = prng(20261130);
  const zones = [
    'UTC',
    'Europe/Amsterdam',
    'America/New_York',
    'Australia/Sydney',
    'Australia/Lord_Howe',
    'America/St_Johns',
    'Asia/Kolkata',
    'Pacific/Chatham',
  ];
  const types = ['I', 'H', 'D', 'W', 'BW', 'M', 'BM', 'Q', 'Y'] as const;
  const from = Date.UTC(1950, 0, 1);
  const to = Date.UTC(2090, 0, 1);
  for (let i = 0; i < 400; i++) {
    const timeZone = zones[Math.floor(random() * zones.length)]!;
    const scheduleType = types[Math.floor(random() * types.length)]!;
    const anchor = new Date(from + Math.floor((random() * (to - from)) / 1000) * 1000);
    const k = 1 + Math.floor(random() * 30);
    const s = { scheduleType, minutes: 1 + Math.floor(random() * 1440), nextRun: anchor, anchor, timeZone };
    const stepped = steps(s, k).at(-1);
    const jump = runAt(s, k);
    const label = `case ${i}: ${scheduleType} from ${iso(anchor)} in ${timeZone}, k = ${k}`;
    assert.is(stepped, iso(jump), label);
    // The first slot after the one before it is the same slot, whatever catchUp says.
    assert.is(iso(nextRun({ ...s, nextRun: runAt(s, k - 1) }, { now: runAt(s, k - 1), catchUp: false })), iso(jump), label);
    if (scheduleType === 'M' || scheduleType === 'Q' || scheduleType === 'Y') {
      const a = toWall(anchor, timeZone);
      const w = toWall(jump, timeZone);
      if (w.hour === a.hour) assert.is(w.day, Math.min(a.day, new Date(Date.UTC(w.year, w.month, 0)).getUTCDate()), label);
    }
  }
});

Property.run();

const Form = suite('validateSchedule: next run, anchor and zone');

Form('next run defaults to now, for Cron to the first match after now in the schedule zone', () => {
  const now = d('2026-06-01T12:34:56Z');
  const daily = validateSchedule({ func: 'f', scheduleType: 'Daily' }, { now });
  assert.is(iso(daily.nextRun), iso(now));
  assert.is(iso(daily.anchor), iso(now));
  const cron = validateSchedule(
    { func: 'f', scheduleType: 'C', cron: '0 9 * * *', timeZone: 'australia/sydney' },
    { now, timeZone: 'UTC' },
  );
  assert.is(cron.timeZone, 'Australia/Sydney', 'stored as the runtime spells it');
  assert.is(iso(cron.nextRun), '2026-06-01T23:00:00.000Z'); // 09:00 AEST on 2 June
});

Form('an edit moves the anchor only when next run, type, cron or zone change', () => {
  const now = d('2026-06-01T12:00:00Z');
  const previous = validateSchedule({ func: 'f', scheduleType: 'M', nextRun: '2026-07-31T09:00:00Z' }, { now });
  const stepped = { ...previous, nextRun: d('2026-08-31T09:00:00Z') };
  assert.is(iso(validateSchedule({ name: 'renamed', repeats: 5 }, { previous: stepped, now }).anchor), '2026-07-31T09:00:00.000Z');
  assert.is(iso(validateSchedule({ nextRun: '2026-09-15T09:00:00Z' }, { previous: stepped, now }).anchor), '2026-09-15T09:00:00.000Z');
  const zoned = validateSchedule({ timeZone: 'Europe/Amsterdam' }, { previous: stepped, now });
  assert.is(iso(zoned.anchor), '2026-08-31T09:00:00.000Z');
  assert.is(zoned.timeZone, 'Europe/Amsterdam');
  assert.is(iso(validateSchedule({ scheduleType: 'Q' }, { previous: stepped, now }).anchor), '2026-08-31T09:00:00.000Z');
  assert.throws(() => validateSchedule({ timeZone: 'Europe/Nowhere' }, { previous, now }), /timeZone: must be an IANA time zone/);
  assert.throws(() => validateSchedule({ timeZone: 'x'.repeat(65) }, { previous, now }), /timeZone: must be at most 64/);
});

Form.run();
