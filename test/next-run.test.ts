import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { nextRun, upcomingRuns, validateSchedule, ValidationError } from '../src/index.js';
import { fromWall, toWall } from '../src/time.js';

const d = (iso: string) => new Date(iso);
const iso = (date: Date) => date.toISOString();
/** A `now` before every schedule here: no slot is older than the catch-up window. */
const early = d('2000-01-01T00:00:00Z');

const Types = suite('nextRun: each schedule type');

Types('Minutes adds the minutes, Hourly an hour of real time', () => {
  assert.is(iso(nextRun({ scheduleType: 'I', minutes: 15, nextRun: d('2026-01-01T10:00:00Z') }, { now: early })), '2026-01-01T10:15:00.000Z');
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
  assert.is(iso(nextRun({ scheduleType: 'D', nextRun: d('2026-03-07T14:00:00Z') }, { timeZone: tz, now: early })), '2026-03-08T13:00:00.000Z');
  // 31 October 09:00 EDT → 1 November 09:00 EST.
  assert.is(iso(nextRun({ scheduleType: 'D', nextRun: d('2026-10-31T13:00:00Z') }, { timeZone: tz, now: early })), '2026-11-01T14:00:00.000Z');
  // Europe/Berlin, 29 March 2026: 08:00 CET (07:00Z) → 08:00 CEST (06:00Z).
  assert.is(
    iso(nextRun({ scheduleType: 'D', nextRun: d('2026-03-28T07:00:00Z') }, { timeZone: 'Europe/Berlin', now: early })),
    '2026-03-29T06:00:00.000Z',
  );
});

Types('a daily time that does not exist on the spring-forward day runs when the gap ends, then is back at its time', () => {
  const tz = 'America/New_York';
  // 02:30 EST on 7 March (07:30Z); 8 March has no 02:30: the run is at 03:00 EDT (07:00Z), the first valid instant.
  assert.is(iso(nextRun({ scheduleType: 'D', nextRun: d('2026-03-07T07:30:00Z') }, { timeZone: tz, now: early })), '2026-03-08T07:00:00.000Z');
  // The anchor keeps the wall-clock time: 9 March is 02:30 EDT again (06:30Z).
  const s = { scheduleType: 'D' as const, anchor: d('2026-03-07T07:30:00Z'), nextRun: d('2026-03-08T07:00:00Z') };
  assert.is(iso(nextRun(s, { timeZone: tz, now: early })), '2026-03-09T06:30:00.000Z');
});

Types('Weekly and Biweekly add 7 and 14 calendar days', () => {
  const tz = 'Europe/London';
  // 9:00 GMT on 22 March → 9:00 BST on 29 March (DST starts that morning).
  assert.is(iso(nextRun({ scheduleType: 'W', nextRun: d('2026-03-22T09:00:00Z') }, { timeZone: tz, now: early })), '2026-03-29T08:00:00.000Z');
  assert.is(iso(nextRun({ scheduleType: 'BW', nextRun: d('2026-03-22T09:00:00Z') }, { timeZone: tz, now: early })), '2026-04-05T08:00:00.000Z');
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
  assert.is(iso(nextRun({ scheduleType: 'M', nextRun: d('2026-02-15T13:00:00Z') }, { timeZone: tz, now: early })), '2026-03-15T12:00:00.000Z');
});

Types('Cron finds the next match in the time zone', () => {
  // 03:00 every day in Tokyo is 18:00Z the day before.
  assert.is(
    iso(nextRun({ scheduleType: 'C', cron: '0 3 * * *', nextRun: d('2026-05-01T18:00:00Z') }, { timeZone: 'Asia/Tokyo', now: early })),
    '2026-05-02T18:00:00.000Z',
  );
  assert.is(iso(nextRun({ scheduleType: 'C', cron: '*/10 * * * *', nextRun: d('2026-05-01T10:00:00Z') }, { now: early })), '2026-05-01T10:10:00.000Z');
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
  assert.is(iso(nextRun({ scheduleType: 'I', minutes: 10, nextRun: d('2026-06-01T11:25:00Z') }, { now, catchUp: false })), '2026-06-01T12:05:00.000Z');
  assert.is(iso(nextRun({ scheduleType: 'H', nextRun: d('2026-06-01T02:30:00Z') }, { now, catchUp: false })), '2026-06-01T12:30:00.000Z');
  assert.is(iso(nextRun({ scheduleType: 'D', nextRun: d('2026-05-20T09:00:00Z') }, { now, catchUp: false })), '2026-06-02T09:00:00.000Z');
  assert.is(iso(nextRun({ scheduleType: 'C', cron: '0 * * * *', nextRun: d('2026-05-20T09:00:00Z') }, { now, catchUp: false })), '2026-06-01T13:00:00.000Z');
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
