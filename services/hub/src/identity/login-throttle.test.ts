import test from "ava";
import { GlobalLoginLimiter, SignInRateLimitedError } from "./login-throttle.js";

test("the global sign-in limit lets a burst through, refuses the next attempt and refills at its rate", (t) => {
  let now = 0;
  const limiter = new GlobalLoginLimiter({ perSecond: 2, burst: 3 }, () => now);
  for (let i = 0; i < 3; i++) limiter.take();
  const refused = t.throws(() => limiter.take(), { instanceOf: SignInRateLimitedError });
  t.is(refused.message, "too many sign-in attempts right now; try again in 1 s");
  now += 500;
  t.notThrows(() => limiter.take(), "half a second at 2/s earns one attempt");
  t.throws(() => limiter.take(), { instanceOf: SignInRateLimitedError });
  now += 60_000;
  for (let i = 0; i < 3; i++) limiter.take();
  t.throws(() => limiter.take(), { instanceOf: SignInRateLimitedError }, "a quiet spell refills the burst, never more");
});
