import { describeGoal, describeVerdict, judge, type Target } from '../../../bench/targets.js';

// How `npm run bench` reads its numbers; the numbers themselves are never asserted in unit tests.
const ceiling: Target = { name: 'cold start', direction: 'max', goal: 300, unit: 'ms' };
const floor: Target = { name: 'status', direction: 'min', goal: 15_000, unit: 'req/s' };

describe('bench targets', () => {
  it('a ceiling is met at or under the goal and missed by the excess above it', () => {
    expect(judge(ceiling, 300)).toMatchObject({ met: true, missedBy: 0 });
    const missed = judge(ceiling, 450);
    expect(missed).toMatchObject({ met: false, missedBy: 150, missedByFraction: 0.5 });
    expect(describeVerdict(missed)).toBe('MISSED by 150 ms (50 %)');
  });

  it('a floor is met at or above the goal and missed by the shortfall below it', () => {
    expect(describeVerdict(judge(floor, 16_000))).toBe('met');
    const missed = judge(floor, 12_000);
    expect(missed).toMatchObject({ met: false, missedBy: 3_000, missedByFraction: 0.2 });
    expect(describeVerdict(missed)).toBe('MISSED by 3000 req/s (20 %)');
  });

  it('a value that was not measured is never met', () => {
    const v = judge(ceiling, Number.NaN);
    expect(v.met).toBe(false);
    expect(describeVerdict(v)).toBe('NOT MEASURED');
  });

  it('a relative goal whose base is unknown is never met and says so', () => {
    const v = judge({ name: '/echo at 8', direction: 'min', goal: Number.NaN, unit: 'req/s' }, 1200);
    expect(v.met).toBe(false);
    expect(describeVerdict(v)).toBe('NO GOAL (its baseline is unknown)');
  });

  it('states the goal with its direction', () => {
    expect(describeGoal(ceiling)).toBe('≤ 300 ms');
    expect(describeGoal({ name: 'ratio', direction: 'max', goal: 1, unit: '× floor' })).toBe('≤ 1.00 × floor');
  });
});
